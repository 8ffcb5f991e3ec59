"""Names that changed so that each word has one meaning (constraints, vetting, plan, gates,
verdicts): configs with an old field name are refused in one line that says the new one, and
plugins written against the old Python names still work, with a DeprecationWarning."""

import warnings

import pytest

import atk_core
from atk_core import Backend, Pipeline, Response
from atk_core.engine.manifest import RunRecord
from atk_core.toolkit.constraints import vetter_of
from support import stderr_lines


def write_config(tmp_path, body: str):
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "docs" / "a.md").write_text("The kettle boils water in three minutes.\n")
    path = tmp_path / "run.yaml"
    path.write_text(body + f"\ninput_dir: {tmp_path / 'docs'}\noutput_dir: {tmp_path / 'out'}\n")
    return path


def test_a_config_with_model_checks_is_refused_naming_verdicts(atk, tmp_path):
    path = write_config(tmp_path, "pipeline: factual-qa\nmodel_checks: skip")
    result = atk("run", path)
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result) == [
        f"atk: error: {path}: factual-qa has no field 'model_checks' any more: it is called"
        " 'verdicts' now (same values); rename it"]
    assert not (tmp_path / "out").exists()


def test_a_parts_old_field_name_is_refused_naming_the_part(atk, tmp_path):
    path = tmp_path / "run.yaml"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("The kettle boils water in three minutes.\n")
    path.write_text(f"pipeline: domain-expert\ninput_dirs: [{tmp_path / 'docs'}]\n"
                    f"output_dir: {tmp_path / 'out'}\nbase_model: some/model\n"
                    "parts: {factual-qa: {model_checks: note}, repvar: {}}\n")
    result = atk("run", path)
    assert result.returncode == 2, result.stderr
    [line] = stderr_lines(result)
    assert "part 'factual-qa'" in line and "it is called 'verdicts' now" in line, line
    assert not (tmp_path / "out").exists()


def test_the_new_name_runs(atk, tmp_path):
    path = write_config(tmp_path, "pipeline: factual-qa\nverdicts: {judge: skip}\n"
                                  "models: {small: scripted, large: scripted}")
    result = atk("run", path, "--estimate")  # the whole pre-flight and a dry run, nothing written
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out").exists()


def test_pipeline_check_is_taken_as_vet_with_a_warning():
    def vet(**values):
        pass

    with pytest.warns(DeprecationWarning, match=r"Pipeline\(check=...\) is now Pipeline\(vet=...\)"):
        pipeline = Pipeline(name="old", function=lambda **kw: None, check=vet)
    assert pipeline.vet is vet


def test_a_pipeline_refuses_a_renamed_table_that_is_not_names():
    with pytest.raises(atk_core.PluginError, match="renamed maps old field names"):
        Pipeline(name="p", function=lambda **kw: None, renamed={"old": 3})


def test_a_backend_with_the_old_check_options_still_has_it_called():
    seen = []

    class Old(Backend):
        name = "old"

        @classmethod
        def check_options(cls, **options):
            seen.append(options)

        async def chat(self, messages, **kwargs):
            return Response(text="")

    with pytest.warns(DeprecationWarning, match="Old.check_options is now called vet_options"):
        vetter = vetter_of(Old)
    vetter(model="m")
    assert seen == [{"model": "m"}]

    class New(Old.__mro__[1]):  # Backend: no old name anywhere
        name = "new"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vetter_of(New) == New.vet_options


def test_old_top_level_names_still_import_with_a_warning():
    with pytest.warns(DeprecationWarning, match="atk_core.check_arguments is now atk_core.enforce_constraints"):
        old = atk_core.check_arguments
    assert old is atk_core.enforce_constraints
    with pytest.warns(DeprecationWarning, match="check_part is now atk_core.vet_part"):
        assert atk_core.check_part is atk_core.vet_part
    assert "check_arguments" not in dir(atk_core)  # not offered any more


def test_run_record_model_check_is_apply_verdicts():
    assert RunRecord.model_check is not RunRecord.apply_verdicts
    with pytest.warns(DeprecationWarning, match="apply_verdicts"):
        kept = RunRecord().model_check("vote", [], [], policy="note")
    assert kept == []
