"""Config loading: flattening, ${ENV}, --set, redaction, and one clear line for each mistake."""

import pytest

from atk_core import ConfigError, Pipeline
from atk_core.engine.config import config_from_text
from atk_core.engine.redaction import is_secret_key
from support import stderr_lines


def pipeline(function=None):
    def factual(*, input_dir, output_dir, chunk_size=3000, task_id=None, **kwargs):
        pass

    return Pipeline(name="factual", function=function or factual)


def load(text, overrides=(), environ=None):
    return config_from_text(text, "cfg.yaml", overrides, environ or {})


# -- in-process: what each rule produces -------------------------------------------------------


def test_sections_are_flattened_into_keyword_arguments():
    config = load("""
pipeline: factual
output_dir: out
path:
  input_dir: docs
system:
  chunk_size: 500
  system_prompts: [a, b]
top_level: 1
""")
    assert config.arguments_for(pipeline()) == {
        "input_dir": "docs", "chunk_size": 500, "system_prompts": ["a", "b"], "top_level": 1,
    }


def test_a_mapping_the_pipeline_names_as_a_parameter_is_passed_whole():
    def fn(*, sampling, output_dir, **kwargs):
        pass

    config = load("pipeline: p\noutput_dir: o\nsampling:\n  temperature: 0.2\n")
    assert config.arguments_for(Pipeline("p", fn)) == {"sampling": {"temperature": 0.2}}


def test_field_set_twice_names_both_places():
    config = load("pipeline: factual\ninput_dir: a\nchunk_size: 1\nsystem:\n  chunk_size: 2\n")
    with pytest.raises(ConfigError) as caught:
        config.arguments_for(pipeline())
    message = str(caught.value)
    assert "field 'chunk_size' is set twice" in message
    assert "at top level (line 3)" in message and "in section 'system' (line 5)" in message


def test_duplicate_key_in_one_mapping_names_both_lines():
    with pytest.raises(ConfigError, match=r"key 'chunk_size' appears twice in one mapping \(lines 2 and 4\)"):
        load("pipeline: factual\nchunk_size: 1\ninput_dir: a\nchunk_size: 2\n")


def test_missing_required_fields_are_all_named():
    config = load("pipeline: factual\nchunk_size: 1\n")
    with pytest.raises(ConfigError) as caught:
        config.arguments_for(pipeline())
    assert "pipeline 'factual' needs fields 'output_dir', 'input_dir'" in str(caught.value)


def test_set_overrides_are_yaml_typed_and_find_fields_inside_sections():
    config = load(
        "pipeline: factual\nsystem:\n  chunk_size: 10\nflag: false\n",
        ["chunk_size=2000", "flag=true", "models.large.backend=openai", "name=007", "empty="],
    )
    assert config.tree["system"]["chunk_size"] == 2000
    assert config.tree["flag"] is True
    assert config.tree["models"] == {"large": {"backend": "openai"}}
    assert config.tree["name"] == 7
    assert config.tree["empty"] == ""


def test_set_can_reach_list_items():
    config = load("pipeline: p\nprompts: [a, b]\n", ["prompts.1=c"])
    assert config.tree["prompts"] == ["a", "c"]


@pytest.mark.parametrize("override, problem", [
    ("chunk_size", "expected KEY=VALUE"),
    ("a..b=1", "not a valid key path"),
    ("=1", "not a valid key path"),
    ("chunk_size.inner=1", "'chunk_size' is a number, not a section"),
    ("prompts.5=x", "is not an item of a list of 2"),
    ("both=1", "sections one, two all have 'both'"),
])
def test_set_on_a_bad_path_is_refused(override, problem):
    with pytest.raises(ConfigError, match=problem):
        load("pipeline: p\nchunk_size: 3\nprompts: [a, b]\none: {both: 1}\ntwo: {both: 2}\n",
             [override])


def test_env_values_are_substituted_and_redacted_by_reference():
    config = load(
        "pipeline: p\nmodels:\n  small: {backend: openai, api_key: '${KEY}'}\n"
        "header: 'Bearer ${KEY}'\nplain: '$${NOT_ENV}'\nwith_default: '${UNSET:-fallback}'\n",
        environ={"KEY": "sk-very-secret"},
    )
    assert config.tree["models"]["small"]["api_key"] == "sk-very-secret"
    assert config.tree["header"] == "Bearer sk-very-secret"
    assert config.tree["plain"] == "${NOT_ENV}"
    reloaded = load(config.redacted_yaml(), environ={"KEY": "k2"})  # the saved config re-runs
    assert reloaded.tree["plain"] == "${NOT_ENV}" and reloaded.tree["header"] == "Bearer k2"
    assert config.tree["with_default"] == "fallback"
    shown = config.redacted_yaml()
    assert "sk-very-secret" not in shown
    assert "api_key: ${KEY}" in shown and "Bearer ${KEY}" in shown
    assert "sk-very-secret" in config.secret_values()


def test_missing_env_var_is_named_with_where_it_is_used():
    with pytest.raises(ConfigError, match=r"environment variable OPENAI_API_KEY is not set \(used by models.small.api_key\)"):
        load("pipeline: p\nmodels:\n  small: {api_key: '${OPENAI_API_KEY}'}\n")


def test_keys_named_like_secrets_are_redacted():
    config = load("pipeline: p\nhf_token: abcd1234\nmax_tokens: 50\nclientSecret: xyzw\n"
                  "webhook: {headers: {Authorization: x}, password: hunter22}\n")
    shown = config.redacted()
    assert shown["hf_token"] == "<redacted>"
    assert shown["clientSecret"] == "<redacted>"
    assert shown["webhook"]["password"] == "<redacted>"
    assert shown["max_tokens"] == 50
    assert {"abcd1234", "hunter22", "xyzw"} <= set(config.secret_values())


@pytest.mark.parametrize("key, secret", [
    ("api_key", True), ("OPENAI_API_KEY", True), ("apiKey", True), ("token", True),
    ("access_token", True), ("client_secret", True), ("password", True),
    ("Authorization", True), ("Cookie", True),
    ("max_tokens", False), ("tokens_per_chunk", False), ("model", False),
])
def test_is_secret_key(key, secret):
    assert is_secret_key(key) is secret


# -- the real CLI: each bad config is one line and exit status 2 ----------------------------------------


def write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, args, expected", [
    ("pipeline: echo\ninput_text: [unclosed\n", [], "invalid YAML at line 3, column 1"),
    ("input_text: hi\noutput_dir: out\n", [], "no 'pipeline:' key"),
    ("pipeline: ecko\noutput_dir: out\n", [], "unknown pipeline 'ecko'; did you mean 'echo'?"),
    ("pipeline: echo\noutput_dir: out\n", [], "pipeline 'echo' needs field 'input_text'"),
    ("pipeline: echo\ninput_text: a\ninput_text: b\noutput_dir: out\n", [],
     "key 'input_text' appears twice in one mapping (lines 2 and 3)"),
    ("pipeline: echo\ninput_text: a\ngroup: {input_text: b}\noutput_dir: out\n", [],
     "field 'input_text' is set twice"),
    ("pipeline: echo\ninput_text: '${ATK_TEST_UNSET_VAR}'\noutput_dir: out\n", [],
     "environment variable ATK_TEST_UNSET_VAR is not set (used by input_text)"),
    ("pipeline: echo\ninput_text: a\noutput_dir: out\n", ["--set", "input_text.x=1"],
     "'input_text' is a string, not a section"),
    ("pipeline: echo\ninput_text: a\noutput_dir: out\n", ["--progress", "nosuch"],
     "unknown reporter 'nosuch'"),
    ("- just\n- a list\n", [], "must be a mapping"),
    ("", [], "the config is empty"),
    ("pipeline: echo\ninput_text: a\n", [], "needs field 'output_dir'"),
])
def test_bad_config_is_one_line_and_exit_2(atk, demo_site, tmp_path, text, args, expected):
    result = atk("run", write(tmp_path, text), *args, env=demo_site.env(), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("atk: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "a refused config must not write anything"


def test_missing_config_file(atk, demo_site, tmp_path):
    result = atk("run", tmp_path / "nope.yaml", env=demo_site.env())
    assert result.returncode == 2
    assert stderr_lines(result) == [f"atk: error: config file not found: {tmp_path / 'nope.yaml'}"]


def test_debug_adds_the_traceback_to_a_config_error(atk, demo_site, tmp_path):
    result = atk("run", write(tmp_path, "pipeline: ecko\n"), "--debug", env=demo_site.env())
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert stderr_lines(result)[-1].startswith("atk: error: unknown pipeline 'ecko'")


def test_yaml_aliases_that_expand_past_the_cap_are_refused_under_the_alias_count():
    from atk_core.engine.config import MAX_ALIASES, MAX_NODES, config_from_text

    lines = ["pipeline: factual-qa", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 13)]
    assert text_aliases(lines) <= MAX_ALIASES  # each alias fine, the expansion not: 10 * 2**12 values
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES} values once its aliases"):
        config_from_text("\n".join(lines), "bomb.yaml")
    # Shared settings, the aliases a config does use, are fine.
    config = config_from_text("pipeline: x\nm: &m {backend: openai, model: a}\nmodels: {small: *m, large: *m}\n")
    assert config.models["small"] == config.models["large"] == {"backend": "openai", "model": "a"}


def text_aliases(lines) -> int:
    return sum(line.count("*a") for line in lines)
