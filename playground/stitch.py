"""Attach modules before or after a backbone module without renaming anything of the backbone.

A stitched module runs from a forward hook (after) or a forward pre-hook (before) on its target, so every
parameter of the backbone keeps its name: `base.state_dict()` loads into the stitched model with only the
stitched modules' parameters missing, and code that reads the target's attributes (`patch_embed.grid_size`,
TResNet's own `body`) sees the module it expects.

The modules live in a `Stitch` chain (an nn.Sequential) registered as a child so that `print(model)`, parameter
counts, `.to()`, `.eval()` and checkpoints see them:

- on the target itself when it is a leaf (`layer1.0.bn3.after.0`): a leaf has no children its forward could
  iterate, so an extra child changes nothing it does;
- on the model's root otherwise (`layer3_after.0`, placed right after the root child that holds the target):
  containers run their children in order (nn.Sequential, DenseNet's ModuleDict blocks) and some stages iterate
  `self.children()` (RegNet), so an extra child there would run, or run twice.

The hooks find their chain through the target's `__dict__` (not a closure), so `copy.deepcopy` — and the meta
copies made for shape probes — get hooks that run the copied chain.
"""
from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["Stitch", "attach", "chain"]

WHERE = ("before", "after")


class Stitch(nn.Sequential):
    """The modules stitched `where` ('before' | 'after') the backbone module at `target`, run in order; on element
    `index` of the target's output when it returns a tuple or list (the rest passes through)."""

    def __init__(self, target: str, where: str, index: int | None = None):
        super().__init__()
        self.target, self.where, self.index = target, where, index

    def apply(self, out: Any) -> Any:
        if self.index is None:
            return self(out)
        items = list(out)
        items[self.index] = self(items[self.index])
        if hasattr(out, "_fields"):  # a namedtuple
            return type(out)(*items)
        return tuple(items) if isinstance(out, tuple) else items

    def extra_repr(self) -> str:
        return f"{self.where} {self.target}" + (f" (output {self.index})" if self.index is not None else "")


def _chain_attr(where: str) -> str:
    return f"_stitch_{where}"


def _run_after(module: nn.Module, args, output):
    return module.__dict__[_chain_attr("after")].apply(output)


def _run_before(module: nn.Module, args):
    return (module.__dict__[_chain_attr("before")](args[0]),) + tuple(args[1:])


def _root_name(model: nn.Module, path: str, where: str) -> str:
    name = f"{path.replace('.', '_')}_{where}"
    taken = set(model._modules) | set(vars(model))
    n = 1
    while name in taken:
        n += 1
        name = f"{path.replace('.', '_')}_{where}{n}"
    return name


def _register_on_root(model: nn.Module, name: str, chain: Stitch, path: str) -> None:
    """Add `chain` as a root child placed right after the root child that holds `path` (print order)."""
    model.add_module(name, chain)
    top = path.split(".")[0]
    order = [k for k in model._modules if k != name]
    at = order.index(top) + 1 if top in order else len(order)
    order.insert(at, name)
    for k in order:  # re-insert in order: _modules is a plain dict
        model._modules[k] = model._modules.pop(k)


def chain(model: nn.Module, path: str, where: str, index: int | None = None) -> tuple[Stitch, str]:
    """The Stitch chain `where` the module at `path`, made and hooked on first use; and the chain's path."""
    if where not in WHERE:
        raise ValueError(f"where: {where!r} is not one of {WHERE}")
    target = model.get_submodule(path)
    existing = target.__dict__.get(_chain_attr(where))
    if existing is None:
        existing = Stitch(path, where, index)
        if next(target.children(), None) is None and not hasattr(target, where):
            target.add_module(where, existing)
        else:
            _register_on_root(model, _root_name(model, path, where), existing, path)
        object.__setattr__(target, _chain_attr(where), existing)  # a plain attribute: not a second child
        if where == "after":
            target.register_forward_hook(_run_after)
        else:
            target.register_forward_pre_hook(_run_before)
    chain_path = next(p for p, m in model.named_modules() if m is existing)
    return existing, chain_path


def attach(model: nn.Module, path: str, module: nn.Module, where: str = "after", index: int | None = None) -> str:
    """Run `module` right after (or before) the module at `path` (on element `index` of a tuple output); returns
    the new module's path."""
    stitch, stitch_path = chain(model, path, where, index)
    stitch.append(module)
    return f"{stitch_path}.{len(stitch) - 1}"

