"""Every action code the code base records has a phrase people read (issue 12, point 5).

The codes are found where they are given: a call of `audit.record(action=...)` or
`audit.Event(actor, action, ...)`, or of any function that passes its own `action`
parameter on to one of those (`access.record`, a service's `_record`...), followed back
to the literal at its call site. A new code without a phrase fails here; so does a code
that is built in a way this reading can't follow (write it as a literal).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.audit import phrases
from shared.i18n import Translator

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "dashboard", "bot")
AUDIT = "shared.audit.service"


@dataclass(frozen=True)
class Slot:
    """Where a recorder takes its action code: a keyword and, if positional, an index."""

    keyword: str
    index: int | None


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    # Local name of an imported module → its dotted name ("audit" → "shared.audit.service").
    imports: dict[str, str] = field(default_factory=dict)


def _modules() -> list[Module]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = Module(name, path, ast.parse(path.read_text(), str(path)))
            for node in ast.walk(module.tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        module.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        module.imports[alias.asname or alias.name] = alias.name
            found.append(module)
    return found


def _callee(module: Module, call: ast.Call) -> tuple[str, str] | None:
    """(module, function) a call names: `audit.record` → ("shared.audit.service", "record")."""
    func = call.func
    if isinstance(func, ast.Name):
        imported = module.imports.get(func.id)
        if imported and "." in imported:
            return tuple(imported.rsplit(".", 1))  # type: ignore[return-value]
        return (module.name, func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = module.imports.get(func.value.id)
        if base is not None:
            return (base, func.attr)
    return None


def _argument(call: ast.Call, slot: Slot) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == slot.keyword:
            return keyword.value
    if slot.index is not None and slot.index < len(call.args):
        return call.args[slot.index]
    return None


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, int | None]:
    positional = [*function.args.posonlyargs, *function.args.args]
    names: dict[str, int | None] = {a.arg: i for i, a in enumerate(positional)}
    names.update({a.arg: None for a in function.args.kwonlyargs})
    return names


def _calls(function: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(function) if isinstance(n, ast.Call)]


def _recorders(modules: list[Module]) -> dict[tuple[str, str], Slot]:
    """audit's own recorders, and every function passing its parameter on to one."""
    recorders = {(AUDIT, "record"): Slot("action", None), (AUDIT, "Event"): Slot("action", 1)}
    changed = True
    while changed:
        changed = False
        for module in modules:
            for function in _functions(module.tree):
                key = (module.name, function.name)
                if key in recorders:
                    continue
                parameters = _parameters(function)
                for call in _calls(function):
                    slot = recorders.get(_callee(module, call) or ("", ""))
                    value = _argument(call, slot) if slot else None
                    if isinstance(value, ast.Name) and value.id in parameters:
                        recorders[key] = Slot(value.id, parameters[value.id])
                        changed = True
                        break
    return recorders


def _literals(
    value: ast.expr, function: ast.AST | None, where: str, unreadable: list[str]
) -> set[str]:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return {value.value}
    if isinstance(value, ast.IfExp):
        return _literals(value.body, function, where, unreadable) | _literals(
            value.orelse, function, where, unreadable
        )
    if isinstance(value, ast.Name) and function is not None:
        assigned = [
            node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets)
        ]
        if assigned:
            found: set[str] = set()
            for expression in assigned:
                found |= _literals(expression, None, where, unreadable)
            return found
    unreadable.append(f"{where}: {ast.unparse(value)}")
    return set()


def recorded_actions() -> tuple[dict[str, str], list[str]]:
    """Every action code given to the audit log ({code: where}), and the places whose
    code can't be read."""
    modules = _modules()
    recorders = _recorders(modules)
    codes: dict[str, str] = {}
    unreadable: list[str] = []
    for module in modules:
        # Each call with its innermost function (outer ones are walked first).
        owner: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for function in _functions(module.tree):
            owner.update((id(call), function) for call in _calls(function))
        for call in _calls(module.tree):
            slot = recorders.get(_callee(module, call) or ("", ""))
            value = _argument(call, slot) if slot else None
            if value is None:
                continue
            function = owner.get(id(call))
            if (
                function is not None
                and isinstance(value, ast.Name)
                and value.id in _parameters(function)
                and (module.name, function.name) in recorders
            ):
                continue  # a recorder passing its caller's code on: read at the callers
            where = f"{module.path.relative_to(ROOT)}:{call.lineno}"
            for code in _literals(value, function, where, unreadable):
                codes.setdefault(code, where)
    return codes, sorted(set(unreadable))


def test_the_reading_finds_the_codes_it_should() -> None:
    codes, _ = recorded_actions()
    # Given directly, through access.record, through a service's _record and its _remove.
    for code in ("citizen.consent", "case.read", "fund.create", "closure.delete"):
        assert code in codes, code
    assert "staff.reactivate" in codes and "staff.deactivate" in codes
    assert len(codes) > 40


def test_every_recorded_action_has_a_phrase() -> None:
    codes, unreadable = recorded_actions()
    assert unreadable == [], "write these action codes as literals:\n" + "\n".join(unreadable)
    missing = [
        f"{where}: {code}" for code, where in sorted(codes.items()) if code not in phrases.PHRASES
    ]
    assert missing == [], "add a phrase in shared/audit/phrases.py for:\n" + "\n".join(missing)


def test_an_unknown_code_reads_as_words_never_as_the_code() -> None:
    t = Translator("it")
    sentence = phrases.describe("booking.something_new", {"booking_id": 3})
    assert "booking." not in t(sentence.text)
    assert "something_new" not in t(sentence.text)


def test_a_move_says_from_when_to_when() -> None:
    old, new = datetime(2026, 3, 5, 8, 30, tzinfo=UTC), datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    sentence = phrases.describe(
        "booking.create",
        {"citizen_id": 1, "code": "ABC123", "moved_from": 7},
        phrases.Known(starts={7: old, 8: new}),
        object_id="8",
    )
    assert Translator("it")(sentence.text) == "Appuntamento spostato da {before} a {after}"
    assert sentence.values == {"before": phrases.Moment(old), "after": phrases.Moment(new)}
    # The booking's code is still told, under a name people read.
    assert [(label, value) for label, value in sentence.extra] == [
        (phrases.DETAIL_LABELS["code"], "ABC123")
    ]
