"""Draw a form as a Mermaid state diagram, so a dialogue can be reviewed as a picture."""

from __future__ import annotations

from bot.dialogs.schema import Form


def mermaid(form: Form) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {form.steps[0].key}"]
    for index, step in enumerate(form.steps):
        later = form.steps[index + 1 :]
        for target in later:
            condition = ", ".join(f"{k}={v}" for k, v in target.when.items())
            lines.append(f"    {step.key} --> {target.key}" + (f": {condition}" if condition else ""))
            if not target.when and target.required:
                break
        else:
            lines.append(f"    {step.key} --> summary")
    lines.append("    summary --> [*]: submit")
    lines.append("    summary --> summary: edit")
    return "\n".join(lines)
