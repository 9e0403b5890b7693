"""The DARTS `Genotype`: a normal and a reduction cell, each a list of (op, input) pairs.

This is the notation of the DARTS paper's code (``cnn/genotypes.py`` of quark0/darts)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

Pairs ``2k`` and ``2k+1`` are the two inputs of intermediate node ``k``; an input index is
0 (the output of cell k-2), 1 (of cell k-1) or ``2 + j`` (intermediate node j < k). The
``*_concat`` lists name the nodes concatenated into the cell's output. Parsing keeps the
order as written, so a published genotype prints back character for character; the
space (``gennas.space.darts``) decides what is valid and what the canonical form is.

The compact form, for command lines, needs no shell quoting::

    sep_conv_3x3~0,sep_conv_3x3~1+...+skip_connect~0,dil_conv_3x3~2/max_pool_3x3~0,...

nodes joined by ``+``, a node's two inputs by ``,``, normal and reduction cell by ``/``;
a concat other than every intermediate node is appended to its cell as ``@2,3``.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from functools import cached_property

from gennas.errors import GennasError

#: One (op name, input index) pair of a cell.
Pair = tuple[str, int]

_PUBLISHED_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def _pairs_text(pairs: tuple[Pair, ...]) -> str:
    return "[" + ", ".join(f"({op!r}, {index})" for op, index in pairs) + "]"


def _concat_text(concat: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in concat) + "]"


@dataclass(frozen=True)
class Genotype:
    """An immutable DARTS genotype, as written (see the module docstring for the notation).

    Equality and hashing are on the exact pairs; :attr:`canonical` identifies genotypes
    that differ only in the order of a node's two inputs.
    """

    normal: tuple[Pair, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Pair, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in _PUBLISHED_FIELDS:
            object.__setattr__(self, name, _tuple_field(name, getattr(self, name)))

    # ------------------------------------------------------------ string forms
    @classmethod
    def from_string(cls, text: str) -> "Genotype":
        """Parse the published notation (``Genotype(normal=[...], ...)``) or the compact form."""
        if not isinstance(text, str) or not text.strip():
            raise GennasError("empty genotype string; expected DARTS notation 'Genotype(normal=[...], ...)' "
                              "or the compact form 'sep_conv_3x3~0,sep_conv_3x3~1+.../max_pool_3x3~0,...'")
        text = text.strip()
        if text.startswith("Genotype"):
            return cls._from_published(text)
        return cls._from_compact(text)

    @classmethod
    def _from_published(cls, text: str) -> "Genotype":
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise GennasError(f"malformed genotype {text!r}: not valid Genotype(...) notation ({exc.msg})") from None
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
            raise GennasError(f"malformed genotype {text!r}: expected one call Genotype(normal=..., normal_concat=..., "
                              "reduce=..., reduce_concat=...)")
        values: dict[str, object] = dict(zip(_PUBLISHED_FIELDS, [_literal(text, a) for a in tree.args]))
        for keyword in tree.keywords:
            if keyword.arg not in _PUBLISHED_FIELDS or keyword.arg in values:
                raise GennasError(f"malformed genotype {text!r}: unexpected or repeated field {keyword.arg!r}; the "
                                  f"fields are {', '.join(_PUBLISHED_FIELDS)}")
            values[keyword.arg] = _literal(text, keyword.value)
        missing = [f for f in _PUBLISHED_FIELDS if f not in values]
        if missing or len(tree.args) > 4:
            raise GennasError(f"malformed genotype {text!r}: it needs exactly the fields {', '.join(_PUBLISHED_FIELDS)}"
                              + (f" (missing {', '.join(missing)})" if missing else ""))
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def _from_compact(cls, text: str) -> "Genotype":
        cells = text.split("/")
        if len(cells) != 2:
            raise GennasError(f"malformed genotype {text!r}: the compact form is NORMAL/REDUCE (one '/'), e.g. "
                              "'sep_conv_3x3~0,sep_conv_3x3~1+.../max_pool_3x3~0,max_pool_3x3~1+...'")
        parsed = [_compact_cell(text, part) for part in cells]
        return cls(parsed[0][0], parsed[0][1], parsed[1][0], parsed[1][1])

    def to_published(self) -> str:
        """The DARTS code's notation (what its ``print(genotype)`` shows for list concats)."""
        return (f"Genotype(normal={_pairs_text(self.normal)}, normal_concat={_concat_text(self.normal_concat)}, "
                f"reduce={_pairs_text(self.reduce)}, reduce_concat={_concat_text(self.reduce_concat)})")

    def to_string(self) -> str:
        """The compact form (the inverse of :meth:`from_string` on it); keys journals and caches."""
        return "/".join(_compact_text(pairs, concat) for pairs, concat in
                        ((self.normal, self.normal_concat), (self.reduce, self.reduce_concat)))

    def __str__(self) -> str:
        return self.to_string()

    # ----------------------------------------------------------------- structure
    @property
    def ops(self) -> tuple[str, ...]:
        """Every op in order (normal cell's pairs, then the reduction cell's)."""
        return tuple(op for op, _ in self.normal + self.reduce)

    def cell(self, reduction: bool) -> tuple[tuple[Pair, ...], tuple[int, ...]]:
        """``(pairs, concat)`` of the reduction cell or of the normal cell."""
        return (self.reduce, self.reduce_concat) if reduction else (self.normal, self.normal_concat)

    def is_connected(self) -> bool:
        """Whether the output depends on the input: always, since node 2 reads the cell inputs (the cell-DAG API)."""
        return True

    @cached_property
    def canonical_genotype(self) -> "Genotype":
        """The same genotype with each node's two inputs sorted by (input index, op)."""
        def sort(pairs: tuple[Pair, ...]) -> tuple[Pair, ...]:
            out: list[Pair] = []
            for k in range(0, len(pairs), 2):
                out.extend(sorted(pairs[k:k + 2], key=lambda p: (p[1], p[0])))
            return tuple(out)

        return Genotype(sort(self.normal), self.normal_concat, sort(self.reduce), self.reduce_concat)

    @cached_property
    def canonical(self) -> str:
        """Compact string shared by exactly the genotypes that differ only in a node's input order."""
        return self.canonical_genotype.to_string()

    @cached_property
    def canonical_hash(self) -> str:
        return hashlib.sha1(self.canonical.encode()).hexdigest()[:16]


def _tuple_field(name: str, value: object) -> tuple:
    """A field as a tuple of pairs (cells) or of ints (concats), or one clear error."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise GennasError(f"genotype field {name} must be a list, got {value!r}")
    items = tuple(value)  # type: ignore[arg-type]
    if name.endswith("concat"):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
            raise GennasError(f"genotype field {name} must list node indices (integers), got {list(items)!r}")
        return items
    pairs = []
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], int) and not isinstance(item[1], bool)):
            raise GennasError(f"genotype field {name} must list (op, input) pairs like ('sep_conv_3x3', 0), "
                              f"got {item!r}")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def _literal(text: str, node: ast.expr) -> object:
    """A field's value: a Python literal, or ``range(a, b)`` as the DARTS search code prints concats."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        return list(range(*[_literal(text, a) for a in node.args]))  # type: ignore[misc]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GennasError(f"malformed genotype {text!r}: {ast.unparse(node)!r} is not a literal list") from None


def _compact_cell(text: str, part: str) -> tuple[tuple[Pair, ...], tuple[int, ...] | None]:
    body, at, concat_text = part.partition("@")
    pairs: list[Pair] = []
    for node, group in enumerate(body.split("+")):
        for token in group.split(","):
            op, sep, index = token.partition("~")
            if not sep or not op or not index.isdigit():
                raise GennasError(f"malformed genotype {text!r}: input {token!r} of node {node} must be 'op~input' "
                                  "(e.g. 'sep_conv_3x3~0')")
            pairs.append((op, int(index)))
    if at:
        if not all(t.isdigit() for t in concat_text.split(",")):
            raise GennasError(f"malformed genotype {text!r}: the concat after '@' must be node indices like '@2,3,4,5'")
        return tuple(pairs), tuple(int(t) for t in concat_text.split(","))
    return tuple(pairs), tuple(range(2, 2 + len(pairs) // 2))  # every intermediate node, as DARTS concatenates


def _compact_text(pairs: tuple[Pair, ...], concat: tuple[int, ...]) -> str:
    nodes = ["," .join(f"{op}~{index}" for op, index in pairs[k:k + 2]) for k in range(0, len(pairs), 2)]
    full = tuple(range(2, 2 + len(pairs) // 2))
    return "+".join(nodes) + ("" if concat == full else "@" + ",".join(str(i) for i in concat))


#: The genotypes DARTS published (cnn/genotypes.py): first- and second-order search on CIFAR-10.
DARTS_V1 = Genotype.from_string(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])")
DARTS_V2 = Genotype.from_string(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

#: Published genotypes by name: the CLI accepts ``DARTS_V2`` wherever it takes a genotype.
NAMED_GENOTYPES: dict[str, Genotype] = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "DARTS": DARTS_V2}
