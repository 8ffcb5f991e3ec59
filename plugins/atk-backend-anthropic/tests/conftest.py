import sys
from pathlib import Path

# The helpers beside these tests (anthropic_fakes) are imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
