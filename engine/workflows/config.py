"""Builds `pipelines:` and `approvals:` into the tenant model, reporting problems at their file:line:col."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..config.validate import did_you_mean
from ..metadata.model import (ApprovalFlow, ApprovalStep, Field, Label, Option, Pipeline, Rule, Stage,
                              TenantModel)

STATUS_VALUES = (
    ("pending", {"zh": "审批中", "en": "Pending approval"}),
    ("approved", {"zh": "已批准", "en": "Approved"}),
    ("rejected", {"zh": "已驳回", "en": "Rejected"}),
    ("withdrawn", {"zh": "已撤回", "en": "Withdrawn"}),
)
NUMERIC_TYPES = ("money", "decimal", "integer", "formula")


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _unknown_field(builder, path: tuple, ent, name: str, what: str, at: str = "value") -> None:
    builder.error(path, f"{what}: '{name}' is not a field of {ent.name}{_hint(name, ent.fields)}", at=at)


def _entity(builder, model: TenantModel, raw: dict, path: tuple):
    name = raw.get("entity")
    if not isinstance(name, str):
        return None
    ent = model.entities.get(name)
    if ent is None:
        builder.error(path + ("entity",), f"entity: unknown entity '{name}'{_hint(name, model.entities)}", at="value")
    return ent


def _definitions(builder, model: TenantModel, section: str):
    """(name, raw, path, entity) of each well-formed definition of `pipelines:` or `approvals:` whose
    entity exists (problems are reported)."""
    for name, raw in _mapping(builder.data.get(section)).items():
        path = (section, name)
        # the schema's own report covers a malformed definition or key; a bad step or stage deeper
        # down only skips that item, so every other mistake of the definition is reported in one go
        if not isinstance(raw, dict) or any(p[:len(path)] == path and len(p) <= len(path) + 1
                                            for p in builder.bad_paths):
            continue
        ent = _entity(builder, model, raw, path)
        if ent is not None:
            yield name, raw, path, ent


def build_pipelines(builder, model: TenantModel) -> None:
    """Attach each pipeline's stage field (creating it when absent) before expressions compile, so
    formulas may read `stage.probability`."""
    owners: dict[tuple[str, str], str] = {}
    for name, raw, path, ent in _definitions(builder, model, "pipelines"):
        fname = raw.get("field") if isinstance(raw.get("field"), str) else "stage"
        key = (ent.name, fname)
        if key in owners:
            builder.error(path + ("field",), f"field: {ent.name}.{fname} already belongs to the pipeline "
                                             f"'{owners[key]}'")
            continue
        owners[key] = name
        pipe = Pipeline(name=name, label=Label.of(raw.get("label"), fallback=name), entity=ent.name, field=fname,
                        stages=[], forward_only=raw.get("forward_only") is True,
                        reopen_roles=[r for r in raw.get("reopen_roles") or [] if isinstance(r, str)],
                        source=builder.smap.key(path))
        days = raw.get("stagnation_days")
        pipe.stagnation_average = days == "average"
        pipe.stagnation_days = days if isinstance(days, int) and not isinstance(days, bool) else None
        seen: set[str] = set()
        for i, sraw in enumerate(raw.get("stages") or []):
            spath = path + ("stages", i)
            if not isinstance(sraw, dict) or not isinstance(sraw.get("name"), str) or builder.schema_failed(spath):
                continue
            if sraw["name"] in seen:
                builder.error(spath + ("name",), f"name: the stage '{sraw['name']}' is already defined",
                              at="value")
                continue
            seen.add(sraw["name"])
            prob = sraw.get("probability")
            pipe.stages.append(Stage(
                name=sraw["name"], label=Label.of(sraw.get("label"), fallback=sraw["name"]),
                probability=Decimal(str(prob)) if isinstance(prob, (int, float)) else Decimal(0),
                position=len(pipe.stages), outcome=sraw.get("outcome") if isinstance(sraw.get("outcome"), str) else None,
                requires=[r for r in sraw.get("requires") or [] if isinstance(r, str)],
                actions=[Label.of(a) for a in sraw.get("actions") or [] if isinstance(a, (str, dict))],
                deliverables=[Label.of(d) for d in sraw.get("deliverables") or [] if isinstance(d, (str, dict))],
                stagnation_days=sraw.get("stagnation_days") if isinstance(sraw.get("stagnation_days"), int) else None,
                source=builder.smap.key(spath)))
        if not any(s.outcome is None for s in pipe.stages):
            builder.error(path + ("stages",), "stages: a pipeline needs at least one stage that is not won/lost")
        _stage_field(builder, ent, pipe, path)
        _amount_field(builder, ent, pipe, raw, path)
        for i, stage in enumerate(pipe.stages):
            for j, req in enumerate(stage.requires):
                if req not in ent.fields:
                    _unknown_field(builder, path + ("stages", i, "requires", j), ent, req, "requires")
        for role in pipe.reopen_roles:
            if role not in _mapping(builder.data.get("roles")):
                builder.error(path + ("reopen_roles",), f"reopen_roles: unknown role '{role}'", at="value")
        model.pipelines[name] = pipe
    for ent in model.entities.values():
        for fld in ent.fields.values():
            if fld.type == "stage" and not fld.settings.get("pipeline"):
                builder.error(builder.raw_fields[id(fld)][1],
                              f"{ent.name}.{fld.name} is a stage field but no pipeline names it "
                              f"(pipelines: {{<name>: {{entity: {ent.name}, field: {fld.name}, stages: […]}}}})")


def _stage_field(builder, ent, pipe: Pipeline, path: tuple) -> None:
    fld = ent.fields.get(pipe.field)
    if fld is None:
        fld = Field(name=pipe.field, type="stage", label=Label((("zh", "阶段"), ("en", "Stage"))),
                    required=True, source=builder.smap.key(path), entity=ent)
        ent.fields[pipe.field] = fld
        builder.raw_fields[id(fld)] = ({}, path)
    elif fld.type != "stage":
        builder.error(path + ("field",), f"field: {ent.name}.{pipe.field} is {fld.type}; a pipeline's field "
                                         f"must be of type stage (or leave it out and the pipeline adds it)",
                      at="value")
        return
    fld.options = [Option(s.name, s.label) for s in pipe.stages]
    fld.settings = {**fld.settings, "pipeline": pipe.name, "stages": {
        s.name: {"probability": s.probability, "label": s.label.get(), "outcome": s.outcome,
                 "position": s.position} for s in pipe.stages}}
    if fld.default is None and fld.default_expr is None and pipe.stages:
        fld.default = pipe.stages[0].name
    elif fld.default is not None and fld.default not in fld.option_values():
        builder.error(builder.raw_fields[id(fld)][1] + ("default",),
                      f"default: '{fld.default}' is not a stage of the pipeline '{pipe.name}'", at="value")


def _amount_field(builder, ent, pipe: Pipeline, raw: dict, path: tuple) -> None:
    wanted = raw.get("amount")
    if isinstance(wanted, str):
        fld = ent.fields.get(wanted)
        if fld is None:
            _unknown_field(builder, path + ("amount",), ent, wanted, "amount")
        elif fld.type not in NUMERIC_TYPES:
            builder.error(path + ("amount",), f"amount: {ent.name}.{wanted} is {fld.type}, not a number",
                          at="value")
        else:
            pipe.amount = wanted
    elif "amount" in ent.fields and ent.fields["amount"].type in NUMERIC_TYPES:
        pipe.amount = "amount"


def compile_pipeline_checks(builder, model: TenantModel) -> None:
    """Stage `checks:` compile against the entity once its formulas have result types."""
    for name, pipe in model.pipelines.items():
        ent = model.entities[pipe.entity]
        raw_stages = builder.data["pipelines"][name].get("stages") or []
        for stage in pipe.stages:
            i = next(k for k, r in enumerate(raw_stages) if isinstance(r, dict) and r.get("name") == stage.name)
            for j, craw in enumerate(raw_stages[i].get("checks") or []):
                if not isinstance(craw, dict) or not isinstance(craw.get("check"), str):
                    continue
                cpath = ("pipelines", name, "stages", i, "checks", j)
                expr = builder.compile(craw["check"], ent, cpath + ("check",), "check")
                if expr is not None:
                    stage.checks.append(Rule(check=expr, message=Label.of(craw.get("message"),
                                                                          fallback=craw["check"]),
                                             field=pipe.field, source=builder.smap.key(cpath)))


def build_approvals(builder, model: TenantModel) -> None:
    roles = _mapping(builder.data.get("roles"))
    departments = _mapping(builder.data.get("departments"))
    for name, raw, path, ent in _definitions(builder, model, "approvals"):
        when = builder.compile(raw["when"], ent, path + ("when",), "when") if isinstance(raw.get("when"), str) else None
        flow = ApprovalFlow(name=name, label=Label.of(raw.get("label"), fallback=name), entity=ent.name,
                            when=when, steps=[], source=builder.smap.key(path))
        for j, fname in enumerate(raw.get("lock") or []):
            if fname in ent.fields:
                flow.lock.append(fname)
            else:
                _unknown_field(builder, path + ("lock", j), ent, fname, "lock")
        for i, sraw in enumerate(raw.get("steps") or []):
            spath = path + ("steps", i)
            if not isinstance(sraw, dict) or not isinstance(sraw.get("approver"), str) or builder.schema_failed(spath):
                continue
            step = ApprovalStep(position=len(flow.steps), approver=sraw["approver"],
                                mode=sraw.get("mode") if sraw.get("mode") in ("any", "all") else "any",
                                allow_self=sraw.get("allow_self") is True,
                                label=Label.of(sraw["label"]) if isinstance(sraw.get("label"), (str, dict)) else None,
                                source=builder.smap.key(spath))
            if isinstance(sraw.get("when"), str):
                step.when = builder.compile(sraw["when"], ent, spath + ("when",), "when")
            if step.kind == "role" and step.argument not in roles:
                builder.error(spath + ("approver",), f"approver: unknown role '{step.argument}'"
                              + _hint(step.argument, roles), at="value")
            if step.kind == "department" and step.argument not in departments:
                builder.error(spath + ("approver",), f"approver: unknown department '{step.argument}'"
                              + _hint(step.argument, departments), at="value")
            flow.steps.append(step)
        fname = raw.get("status_field")
        if isinstance(fname, str) and ent.fields.get(fname) is not None and \
                ent.fields[fname].settings.get("approval") == name:
            flow.status_field = fname
        model.approvals[name] = flow


def _hint(word: str, choices) -> str:
    guess = did_you_mean(word, list(choices))
    return f" (did you mean '{guess}'?)" if guess else ""


def add_status_fields(builder, model: TenantModel) -> None:
    """Each flow's `status_field`, created when absent, before expressions compile (formulas may read it)."""
    for name, raw in _mapping(builder.data.get("approvals")).items():
        path = ("approvals", name)
        if not isinstance(raw, dict) or builder.schema_failed(path) or not isinstance(raw.get("status_field"), str):
            continue
        ent = model.entities.get(raw.get("entity")) if isinstance(raw.get("entity"), str) else None
        if ent is not None:
            _status_field(builder, ent, name, raw["status_field"], path)


def _status_field(builder, ent, flow_name: str, fname: str, path: tuple) -> None:
    fld = ent.fields.get(fname)
    if fld is None:
        fld = Field(name=fname, type="select", label=Label((("zh", "审批状态"), ("en", "Approval status"))),
                    options=[Option(v, Label.of(lbl)) for v, lbl in STATUS_VALUES],
                    source=builder.smap.key(path + ("status_field",)), entity=ent)
        ent.fields[fname] = fld
        builder.raw_fields[id(fld)] = ({}, path + ("status_field",))
    elif fld.type != "select" or not {v for v, _ in STATUS_VALUES} <= set(fld.option_values()):
        builder.error(path + ("status_field",), f"status_field: {ent.name}.{fname} must be a select field with "
                                                f"the options pending, approved, rejected and withdrawn "
                                                f"(or leave it out of fields: and the flow adds it)", at="value")
        return
    if fld.settings.get("approval"):
        builder.error(path + ("status_field",), f"status_field: {ent.name}.{fname} already belongs to the "
                                                f"approval flow '{fld.settings['approval']}'", at="value")
        return
    fld.settings = {**fld.settings, "approval": flow_name}
