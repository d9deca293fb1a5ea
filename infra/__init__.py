"""The Pulumi program (`pulumi up` runs ../__main__.py) and, in infra.tools, the tools around it."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
