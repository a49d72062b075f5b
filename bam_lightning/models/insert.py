"""Find a CNN's bottlenecks by watching one forward pass, and put attention there.

A bottleneck is where one stage ends and the next shrinks the feature map. Rather than
hard-coding stage names per architecture, one dummy forward records every module's input
and output size. The network is read as a chain of units in the order they ran: the
root's children, opened further wherever a ``nn.Sequential`` or ``nn.ModuleList`` holds
several downsampling steps (as MobileNet's ``features`` does). A unit that shrinks the
map marks a bottleneck right before it, unless only the stem has run so far, or no stage
follows (the head's pooling: a 1x1 output, or no conv from there on). That rule gives the
paper's placement on ResNets (after layer1..3) and works unchanged for MobileNet,
SqueezeNet, DenseNet and networks we never listed.

Placement keeps existing parameter names where it can, so torchvision weights still
load: after a ``nn.Sequential`` stage the module is appended to it (``layer1.attn``);
after a unit inside a ``nn.Sequential`` it is inserted right behind it
(``features.1_attn``). Any other unit (GoogLeNet's ``conv3``, an entry of a
``nn.ModuleList``) is wrapped, and its names gain ``.block`` (``conv3.block.conv.weight``).
"""

import copy
import itertools
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from ..errors import InputError, nearest
from ..nn import AttentionName, create_attns
from .probe import CONVS, probing


@dataclass
class _Call:
    order: int
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    calls: int = 0


@dataclass(frozen=True)
class Bottleneck:
    """Where attention goes: right after the unit named ``after``, whose output is ``channels`` x ``size``."""

    after: str
    channels: int
    size: tuple[int, int]


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, Tensor) and value.dim() == 4 else None


def _trace(model: nn.Module, input_size: tuple[int, int], in_chans: int) -> dict[str, _Call]:
    calls: dict[str, _Call] = {}
    counter = itertools.count()

    def before(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            call = calls.setdefault(name, _Call(order=next(counter)))
            call.calls += 1
            if call.calls == 1 and args:
                call.in_shape = _shape(args[0])

        return hook

    def after(name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if calls[name].calls == 1:
                calls[name].out_shape = _shape(output)

        return hook

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(before(name)))
        handles.append(module.register_forward_hook(after(name)))
    param = next(model.parameters(), None)
    x = torch.zeros(1, in_chans, *input_size, device=param.device if param is not None else None)
    with probing(model, handles):
        model(x)
    return calls


def _shrinks(call: _Call) -> bool:
    if call.in_shape is None or call.out_shape is None:
        return False
    return call.out_shape[2] < call.in_shape[2] or call.out_shape[3] < call.in_shape[3]


def _first_call(name: str, module: nn.Module, calls: dict[str, _Call]) -> int | None:
    """When ``module`` started running; a ``nn.ModuleList`` never runs itself, so its first child."""
    if name in calls:
        return calls[name].order
    orders = [_first_call(f"{name}.{child_name}", child, calls) for child_name, child in module.named_children()]
    return min((order for order in orders if order is not None), default=None)


def _units(module: nn.Module, name: str, calls: dict[str, _Call]) -> list[tuple[str, nn.Module]]:
    """The chain of units the network runs, opening containers that hold several downsamplings."""
    prefix = f"{name}." if name else ""
    children = [(prefix + child_name, child) for child_name, child in module.named_children()]
    started = {child_name: _first_call(child_name, child, calls) for child_name, child in children}
    children = sorted((item for item in children if started[item[0]] is not None), key=lambda item: started[item[0]])
    if name and name not in calls:  # a ModuleList: only its entries run
        opens = True
    else:
        container = isinstance(module, nn.Sequential)
        opens = name == "" or (container and sum(n in calls and _shrinks(calls[n]) for n, _ in children) >= 2)
    if not opens:
        return [(name, module)]
    return [unit for child_name, child in children for unit in _units(child, child_name, calls)]


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, CONVS) for m in module.modules())


Placement = Literal["bottleneck", "around_downsampling", "every_block"]
Attention = AttentionName | Literal["extra_block"]
DEFAULT_ATTENTION: Attention = "bam"


def find_bottlenecks(
    model: nn.Module, input_size: int | tuple[int, int] = 224, in_chans: int = 3, placement: Placement = "bottleneck"
) -> list[Bottleneck]:
    """Where attention goes in ``model`` for inputs of ``input_size``, in execution order.

    ``bottleneck`` (the paper's BAM): before every downsampling step between stages.
    ``around_downsampling``: before and after it, which differs from ``bottleneck`` only
    where a separate unit downsamples (DenseNet's transitions: the paper's "back and forth
    of the transition block"). ``every_block`` (the paper's BAM-C): after every block of
    every stage that follows the stem.
    """
    choices = get_args(Placement)
    if placement not in choices:  # from Python no config check ran, and an unknown one would act as bottleneck
        raise InputError(f"unknown placement {placement!r}{nearest(placement, choices)}: choose one of {', '.join(choices)}")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    calls = _trace(model, size, in_chans)
    units = [(name, module) for name, module in _units(model, "", calls) if calls[name].calls == 1]
    has_conv = [_has_conv(module) for _, module in units]

    def at(name: str) -> list[Bottleneck]:
        shape = calls[name].out_shape
        return [] if shape is None else [Bottleneck(name, shape[1], shape[2:])]

    found: list[Bottleneck] = []
    for index, (name, module) in enumerate(units):
        out = calls[name].out_shape
        stem = sum(has_conv[:index]) < 2  # only the stem's conv has run: no stage has ended yet
        head = not any(has_conv[index:]) or (out is not None and out[2:] == (1, 1))  # no stage follows
        if placement == "every_block":
            if has_conv[index] and sum(has_conv[:index]) >= 1 and not head:
                blocks = [f"{name}.{child}" for child, _ in module.named_children()] if isinstance(module, nn.Sequential) else []
                found += [b for block in blocks or [name] if block in calls for b in at(block)]
        elif _shrinks(calls[name]) and not stem and not head:
            found += at(units[index - 1][0])
            if placement == "around_downsampling" and any(has_conv[index + 1 :]):
                found += at(name)
    return list(dict.fromkeys(found))  # a stage that downsamples is after one step and before the next


def _place(model: nn.Module, after: str, attn: nn.Module) -> None:
    unit = model.get_submodule(after)
    if isinstance(unit, nn.Sequential):
        unit.add_module("attn", attn)
        return
    parent_name, _, key = after.rpartition(".")
    parent = model.get_submodule(parent_name)
    if not isinstance(parent, nn.Sequential):
        setattr(parent, key, nn.Sequential(OrderedDict(block=unit, attn=attn)))
        return
    later = list(parent.named_children())
    later = later[[name for name, _ in later].index(key) + 1 :]
    for name, _ in later:  # re-added after attn: a Sequential runs its children in the order they were added
        delattr(parent, name)
    parent.add_module(f"{key}_attn", attn)
    for name, child in later:
        parent.add_module(name, child)


def extra_block(model: nn.Module, bottleneck: Bottleneck) -> nn.Module:
    """A freshly initialised copy of the last block before ``bottleneck``: the paper's Table 1c control.

    It asks whether BAM's gain is more than the capacity it adds: the same network with
    one more residual (wide, ResNeXt) block where BAM would go, instead of BAM.
    """
    unit = model.get_submodule(bottleneck.after)
    block = copy.deepcopy(unit[-1] if isinstance(unit, nn.Sequential) else unit)
    for m in block.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    x = torch.zeros(1, bottleneck.channels, *bottleneck.size, device=next(block.parameters()).device)
    try:
        with torch.no_grad():
            keeps_shape = block.eval()(x).shape == x.shape
    except RuntimeError:  # it expects other channels: the stage's only block changes the width
        keeps_shape = False
    if not keeps_shape:
        raise InputError(f"cannot add an extra block after {bottleneck.after}: its last block changes the map {tuple(x.shape)}")
    return block.train()


def insert_attention(
    model: nn.Module,
    attention: Attention | None = DEFAULT_ATTENTION,
    input_size: int | tuple[int, int] = 224,
    in_chans: int = 3,
    placement: Placement = "bottleneck",
    attention_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Put one ``attention`` module at every bottleneck of ``model`` (in place) and return it.

    ``input_size`` should be the size the network is meant for: the bottlenecks are found
    by where the feature map shrinks at that size. ``placement`` is explained in
    ``find_bottlenecks``. ``attention_kwargs`` are the block's options (``create_attn``).
    ``attention=None`` leaves ``model`` as is; ``extra_block`` puts a copy of the stage's
    last block there instead of attention, and takes no options.
    """
    if attention is None or attention == "none":
        return model
    if attention == "extra_block" and attention_kwargs:
        raise InputError(
            f"attention extra_block takes no attention_kwargs (it copies the stage's last block): remove {dict(attention_kwargs)}"
        )
    bottlenecks = find_bottlenecks(model, input_size, in_chans, placement)
    if not bottlenecks:
        # timm marks networks whose maps are (N, H, W, C) (Swin and kin): the trace reads no (N, C, H, W) map in them.
        layout = " (its maps are channels-last, N x H x W x C)" if getattr(model, "output_fmt", "NCHW") == "NHWC" else ""
        raise InputError(
            f"no bottleneck found in {type(model).__name__} at input size {input_size}: attention goes where an"
            f" (N, C, H, W) feature map shrinks between stages, and none does here{layout}: a transformer or a network"
            " that never shrinks its map has none; give another backbone or attention null, or check input_size"
        )
    # Built together: an option of a block that acts at no bottleneck's width is refused (create_attns).
    widths = [bottleneck.channels for bottleneck in bottlenecks]
    attns = None if attention == "extra_block" else create_attns(attention, widths, **(attention_kwargs or {}))
    for i, bottleneck in enumerate(bottlenecks):
        attn = extra_block(model, bottleneck) if attns is None else attns[i]
        param = next(model.parameters(), None)
        if param is not None:
            attn.to(device=param.device, dtype=param.dtype)
        _place(model, bottleneck.after, attn)
    return model
