import csv

import pytest

from gennas.bench.nb201 import load_table, nb201_cell, nb201_index
from gennas.errors import GennasError
from gennas.space import Cell, CellSpace, get_space, nb201_space

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_string_round_trip_and_structure():
    cell = Cell.from_string(RESNET)
    assert cell.to_string() == RESNET
    assert cell.n_nodes == 4 and len(cell.edges) == 6
    assert cell.incoming(3) == [(0, "skip_connect"), (1, "none"), (2, "skip_connect")]
    assert cell.adjacency.tolist() == [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert cell.is_connected()
    # edges listed out of order within a group parse to the same cell
    assert Cell.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+|none~1|skip_connect~0|skip_connect~2|") == cell


def test_every_table_row_round_trips_and_index_is_row_order():
    table = load_table()
    space = nb201_space()
    assert len(table.archs) == 15625
    for i in (0, 1, 777, 15624):
        cell = nb201_cell(i)
        assert nb201_index(cell) == i
        assert space.contains(cell)
    assert {space.ordinal(Cell.from_string(a)) for a in table.archs} == set(range(15625))


def test_canonical_form_reproduces_benchmark_grouping():
    """Our canonical form groups exactly the cells the benchmark's UniqueString groups."""
    table = load_table()
    with table.path.open() as fh:
        unique = [row["UniqueString"] for row in csv.DictReader(fh)]
    ours = [Cell.from_string(a).canonical for a in table.archs]
    assert ours == unique
    assert len(set(ours)) == 6466


def test_isomorphic_cells_share_canonical_form():
    # node 1 is a copy of the input, so feeding the 1x1 conv from node 0 or node 1 is the same function
    a = Cell.from_string("|skip_connect~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|")
    b = Cell.from_string("|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|")
    c = Cell.from_string("|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|")
    assert a != b and a.canonical == b.canonical and a.canonical_hash == b.canonical_hash
    assert a.canonical == "((0)@nor_conv_1x1+0)@nor_conv_1x1+0+0"
    assert a.canonical != c.canonical
    # a cut-off output is the zero function whatever the dead ops are
    dead1 = Cell.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    dead2 = Cell.from_string("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert dead1.canonical == dead2.canonical == "#+#+#"


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("", "empty arch string"),
        ("|nor_conv_3x3~0|+|none~0|", "node 2 needs one edge"),
        ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_7x7'"),
        ("nor_conv_3x3~0+|none~0|none~1|", "must look like"),
        ("|nor_conv_3x3|+|none~0|none~1|", "must be 'op~source'"),
        ("|nor_conv_3x3~1|+|none~0|none~1|", "exactly one edge"),
    ],
)
def test_malformed_strings_get_clear_errors(bad, fragment):
    with pytest.raises(GennasError, match=fragment):
        Cell.from_string(bad)


def test_space_sample_mutate_encode(rng):
    space = nb201_space()
    cells = space.sample(rng, 200)
    assert len({c.to_string() for c in cells}) > 190
    for cell in cells[:20]:
        assert space.decode(space.encode(cell)) == cell
        assert space.from_ordinal(space.ordinal(cell)) == cell
        child = space.mutate(cell, rng)
        assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1
    assert space.one_hot(cells[0]).shape == (30,)
    assert len(space.neighbours(cells[0])) == 24
    assert sum(1 for _ in space.enumerate()) == 15625


def test_large_space_is_beyond_enumeration_and_samples_connected(rng):
    space = get_space("dag6")
    assert space.num_edges == 15 and space.size > 10**9
    with pytest.raises(GennasError, match="too many to enumerate"):
        next(space.enumerate())
    for cell in space.sample(rng, 50):
        assert cell.n_nodes == 6 and cell.is_connected()
        assert space.contains(space.mutate(cell, rng, n_mutations=3))
    dead = Cell(("none",) * 15)
    with pytest.raises(GennasError, match="not reachable"):
        space.validate(dead)


def test_space_errors():
    with pytest.raises(GennasError, match="unknown search space"):
        get_space("nb301")
    with pytest.raises(GennasError, match="4 nodes but space"):
        get_space("dag5").validate(Cell.from_string(RESNET))
    with pytest.raises(GennasError, match="decodes 6 op indices"):
        nb201_space().decode([0, 1])
    with pytest.raises(GennasError, match="does not have"):
        CellSpace(4, ("none", "nor_conv_3x3")).validate(Cell.from_string(RESNET))
