"""The Pulumi program: stack config -> validated settings -> the platform -> stack outputs.

`pulumi up` runs this file; so does the offline preview (`python -m infra preview`), under Pulumi's mocks.
"""

import pulumi

from infra.components.wheel import WheelBuildError
from infra.platform import build, git_commit
from infra.settings import SettingsError, load_settings, secret_values

try:
    loaded = load_settings()
    loaded.check_secrets_for_deploy(pulumi.get_project())
except SettingsError as exc:
    # RunError ends the program with this message alone, not a traceback.
    raise pulumi.RunError(str(exc)) from None

try:
    outputs = build(loaded, secret_values(loaded), pulumi.get_project(), pulumi.get_stack(), git_commit=git_commit())
except WheelBuildError as exc:
    raise pulumi.RunError(str(exc)) from None

for name, value in outputs.items():
    pulumi.export(name, value)
