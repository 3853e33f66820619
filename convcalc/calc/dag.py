"""A network read from a file (ONNX, Keras) as a graph of nodes, turned into specs.

Files describe a network as nodes that read and write named tensors. convcalc's
grammar says the same with groups: where a tensor feeds several nodes, the branches
run to the node where they all meet (the tensor's nearest post-dominator), which
must be a merge (add, concat or mul); the group is ``( A | B ) MERGE``, a branch that
is the tensor itself is the identity. Networks built of such forks and joins (ResNet,
Inception, DenseNet, squeeze-and-excitation, U-Net without crops) come out whole; a
merge that reaches back to a tensor outside its fork becomes ``@NAME`` and
``add:NAME`` (or concat, mul). Anything else is refused, naming the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Group, Layer, Mark, Merge, Spec
from convcalc.errors import ConvcalcError

MERGE_KINDS = ("add", "concat", "mul")


class Node(NamedTuple):
    """One node of a file's graph: a layer (or a merge: ``layer`` None and ``merge``
    its kind), the tensors it reads, the tensor it writes, its name in the file."""

    name: str
    layer: Layer | None
    inputs: tuple[str, ...]
    output: str
    merge: str = ""


def graph_specs(nodes: Sequence[Node], source: str, output: str | None = None) -> list[Spec]:
    """The specs of a graph whose nodes are in topological order, from the tensor the
    first node reads to ``output`` (default: the last node's).

    Raises ConvcalcError naming the node where the graph is not forks and joins.
    """
    if not nodes:
        raise ConvcalcError(f"{source} holds no layers")
    return _Builder(nodes, source).build(nodes[0].inputs[0], output or nodes[-1].output)


class _NotNested(Exception):
    """A fork whose branches do not all end at its join (they cross other branches)."""


class _Builder:
    def __init__(self, nodes: Sequence[Node], source: str) -> None:
        self.source = source
        self.producer = {node.output: node for node in nodes}
        self.order = {node.output: i for i, node in enumerate(nodes)}
        self.consumers: dict[str, list[Node]] = {}
        for node in nodes:
            for tensor in dict.fromkeys(node.inputs):
                self.consumers.setdefault(tensor, []).append(node)
        self.pdom = self._post_dominators(nodes)
        self.written: dict[str, tuple[list[Spec], Spec]] = {}

    def build(self, start: str, end: str) -> list[Spec]:
        specs, last = self._run(start, stop=None, end=end)
        if last != end:
            raise ConvcalcError(f"{self.source}: the graph does not reach its output '{end}'")
        return specs

    def _run(self, tensor: str, stop: Node | None, end: str) -> tuple[list[Spec], str]:
        """Specs from ``tensor`` until the next node is ``stop`` (or ``end`` is reached)."""
        specs: list[Spec] = []
        while tensor != end:
            consumers = self.consumers.get(tensor, [])
            if stop is not None and consumers == [stop]:
                break
            if len(consumers) == 1 and len(dict.fromkeys(consumers[0].inputs)) == 1:
                tensor = self._emit(consumers[0], specs)
            elif len(consumers) == 1:
                tensor = self._merge_by_name(consumers[0], tensor, specs)
            elif consumers and self._closes_inside(tensor, stop):
                written = dict(self.written)
                try:
                    tensor = self._group(tensor, specs, end)
                except _NotNested:  # the branches cross: follow the main path instead
                    self.written = written
                    tensor = self._emit(self._main_path(tensor, consumers), specs)
            elif consumers:
                tensor = self._emit(self._main_path(tensor, consumers), specs)
            else:
                break
        return specs, tensor

    def _closes_inside(self, tensor: str, stop: Node | None) -> bool:
        """True when the branches from ``tensor`` meet at a merge before ``stop``."""
        join = self._join(tensor)
        if join is None or not join.merge:
            return False
        return stop is None or self.order[join.output] < self.order[stop.output]

    def _main_path(self, tensor: str, consumers: list[Node]) -> Node:
        """The one consumer that is not a merge: the others read ``tensor`` by name."""
        main = [node for node in consumers if not node.merge]
        if len(main) != 1:
            raise ConvcalcError(
                f"{self.source}: the branches from '{tensor}' do not meet at an add, concat "
                f"or mul ({', '.join(node.name for node in consumers)}); valid: networks of "
                "forks and joins"
            )
        return main[0]

    def _emit(self, node: Node, specs: list[Spec]) -> str:
        if node.layer is None:  # a merge of one tensor: nothing to do
            return node.output
        spec = Spec(format_layer(node.layer), node.layer, f"{self.source} node '{node.name}'")
        specs.append(spec)
        self.written[node.output] = (specs, spec)
        return node.output

    def _group(self, tensor: str, specs: list[Spec], end: str) -> str:
        join = self._join(tensor)
        if join is None or not join.merge:
            name = join.name if join is not None else "the output"
            raise ConvcalcError(
                f"{self.source}: the branches from '{tensor}' meet at '{name}', not at an "
                "add, concat or mul; valid: networks of forks and joins"
            )
        branches: list[tuple[Spec, ...]] = []
        ends = {tensor} if join in self.consumers[tensor] else set()
        for consumer in self.consumers[tensor]:
            if consumer is join:
                branches.append(())
                continue
            if consumer.merge:  # reached later by a branch, which reads this by name
                continue
            branch, last = self._run_from(consumer, join, end)
            if join not in self.consumers.get(last, []):
                raise ConvcalcError(
                    f"{self.source}: node '{consumer.name}' branches off '{tensor}' and never "
                    f"reaches '{join.name}'"
                )
            branches.append(tuple(branch))
            ends.add(last)
        if ends != set(join.inputs):
            raise _NotNested
        count = f"{len(branches)} branch" + ("es" if len(branches) > 1 else "")
        group = Group(tuple(branches), join.merge)
        spec = Spec(f"( {count} ) {join.merge}", group, f"{self.source} node '{join.name}'")
        specs.append(spec)
        self.written[join.output] = (specs, spec)
        return join.output

    def _run_from(self, node: Node, join: Node, end: str) -> tuple[list[Spec], str]:
        specs: list[Spec] = []
        if len(dict.fromkeys(node.inputs)) > 1:
            raise ConvcalcError(
                f"{self.source}: node '{node.name}' merges tensors from inside a fork; "
                "valid: networks of forks and joins"
            )
        tensor = self._emit(node, specs)
        rest, last = self._run(tensor, stop=join, end=end)
        return specs + rest, last

    def _merge_by_name(self, node: Node, tensor: str, specs: list[Spec]) -> str:
        """A merge of the current tensor with ones written earlier: ``add:NAME``."""
        if not node.merge:
            raise ConvcalcError(
                f"{self.source}: node '{node.name}' reads several tensors but is no add, "
                "concat or mul"
            )
        names = []
        for other in dict.fromkeys(node.inputs):
            if other == tensor:
                continue
            names.append(self._mark(other, node))
        layer = Merge(node.merge, tuple(names))
        specs.append(Spec(format_layer(layer), layer, f"{self.source} node '{node.name}'"))
        return node.output

    def _mark(self, tensor: str, reader: Node) -> str:
        """Name ``tensor`` where it was written (``@t3``), for a later merge."""
        if tensor not in self.written:
            raise ConvcalcError(
                f"{self.source}: node '{reader.name}' reads '{tensor}' before it is written"
            )
        where, spec = self.written[tensor]
        at = next(i for i, s in enumerate(where) if s is spec) + 1
        following = where[at].layer if at < len(where) else None
        if isinstance(following, Mark):
            return following.name
        name = f"t{self.order.get(tensor, 0)}"
        where.insert(at, Spec(f"@{name}", Mark(name), spec.where))
        return name

    def _join(self, tensor: str) -> Node | None:
        """The node writing the nearest tensor every path from ``tensor`` goes through."""
        after = self.pdom.get(tensor, set()) - {tensor}
        if not after:
            return None
        nearest = min(after, key=lambda t: self.order.get(t, len(self.order)))
        return self.producer.get(nearest)

    def _post_dominators(self, nodes: Sequence[Node]) -> dict[str, set[str]]:
        """For each tensor, the tensors every path from it to the end goes through."""
        pdom: dict[str, set[str]] = {}

        def through(tensor: str) -> set[str]:
            users = self.consumers.get(tensor, [])
            paths = [pdom[user.output] for user in users]
            return {tensor} | (set.intersection(*paths) if paths else set())

        # a tensor's users all come after its producer: reverse order has them ready
        for node in reversed(nodes):
            pdom[node.output] = through(node.output)
        for node in nodes:
            for tensor in node.inputs:
                if tensor not in pdom:
                    pdom[tensor] = through(tensor)
        return pdom
