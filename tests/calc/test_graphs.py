"""Networks that branch: groups, names, merges and repeats (shared/DESIGN.md "Graphs")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.calc.evaluation import evaluate, placed_layers
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Group, Mark
from convcalc.calc.sequence import parse_network, parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.errors import ConvcalcError


def run(shape: str, *texts: str):
    return evaluate(parse_specs(texts), parse_shape(shape, 2))


# -- every example of the contract ----------------------------------------------------


def test_resnet_basic_blocks_identity_then_projection():
    result = run(
        "56x56x64",
        "( | conv:64,3,p=1,bias=no bn relu conv:64,3,p=1,bias=no bn ) add relu",
        "( conv:128,1,s=2,bias=no bn | conv:128,3,s=2,p=1,bias=no bn relu "
        "conv:128,3,p=1,bias=no bn ) add relu",
    )
    assert [str(layer.output) for layer in result.layers] == [
        "56x56x64",
        "56x56x64",
        "28x28x128",
        "28x28x128",
    ]
    # torchvision's BasicBlock(64, 64) and BasicBlock(64, 128, stride 2, downsample)
    assert result.layers[0].params == 73_984
    assert result.layers[2].params == 230_144


def test_an_inception_module():
    result = run(
        "28x28x192",
        "( conv:64,1 | conv:96,1 conv:128,3,p=1 | conv:16,1 conv:32,3,p=1 | "
        "maxpool:3,s=1,p=1,ceil conv:32,1 ) concat",
    )
    assert str(result.output) == "28x28x256"
    assert result.layers[0].spec == "( 4 branches ) concat"
    assert result.total_params == (192 * 64 + 64) + (192 * 96 + 96) + (96 * 128 * 9 + 128) + (
        192 * 16 + 16
    ) + (16 * 32 * 9 + 32) + (192 * 32 + 32)


def test_squeeze_and_excitation_gate_makes_the_field_the_whole_input():
    result = run("16x16x32", "( | gap conv:8,1 relu conv:32,1 sigmoid ) mul")
    layer = result.layers[0]
    assert str(layer.output) == "16x16x32"
    assert layer.params == 32 * 8 + 8 + 8 * 32 + 32
    assert layer.receptive_field is None
    assert any("whole input" in note for note in layer.notes)


def test_a_densenet_block_of_six_layers():
    result = run(
        "56x56x64", "( | bn relu conv:128,1,bias=no bn relu conv:32,3,p=1,bias=no ) concat *6"
    )
    assert len(result.layers) == 6
    assert str(result.output) == "56x56x256"


def test_a_unet_skip():
    result = run("64x64x3", "conv:16,3,p=1 @a maxpool:2 conv:16,3,p=1 upsample:2 concat:a conv:8,1")
    assert [str(layer.output) for layer in result.layers] == [
        "64x64x16",
        "32x32x16",
        "32x32x16",
        "64x64x16",
        "64x64x32",
        "64x64x8",
    ]


def test_crop_centre_crops_the_named_tensor():
    result = run("20x20x1", "conv:4,3 @a conv:4,3 conv:4,3 concat:a,crop")
    assert str(result.output) == "14x14x8"


# -- receptive field through merges -----------------------------------------------------


def test_the_field_of_a_merge_is_the_union_of_its_inputs():
    # branch 1 is 1x1 (field 1), branch 2 two 3x3 (field 5): the union is 5
    result = run("32x32x8", "( conv:8,1 | conv:8,3,p=1 conv:8,3,p=1 ) add")
    field = result.layers[0].receptive_field
    assert field is not None and field.size == (5, 5) and field.start == (0, 0)
    # a strided branch beside a plain one: the larger span wins, the jumps agree
    shifted = run("32x32x8", "( conv:8,2,s=2 | conv:8,4,s=2,p=1 ) concat")
    field = shifted.layers[0].receptive_field
    assert field is not None and field.size == (4, 4) and field.jump == (2, 2)


# -- errors name the place and the shapes --------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "fragments"),
    [
        (["( conv:8,1 | conv:8,3 ) add"], ["add of", "32x32x8", "30x30x8"]),
        (["( conv:8,1,s=2 | conv:16,1 ) concat"], ["concat of", "16x16x8", "32x32x16"]),
        (["concat:b"], ["no tensor is named 'b'", "none yet"]),
        (["@a conv:8,3 add:c"], ["no tensor is named 'c'", "@a"]),
        (["( conv:8,1 | conv:8,1 )"], ["must end in a merge"]),
        (["( conv:8,1 | conv:8,1"], ["never closed"]),
        (["conv:8,1 )"], ["outside a group"]),
        (["*3 conv:8,1"], ["repeats nothing"]),
        (["conv:8,1 *0"], ["not a repeat"]),
    ],
)
def test_graph_errors_name_the_place_and_the_shapes(texts, fragments):
    with pytest.raises(ConvcalcError) as info:
        run("32x32x8", *texts)
    message = str(info.value)
    assert all(fragment in message for fragment in fragments), message
    assert "\n" not in message


def test_errors_in_a_network_file_name_the_line():
    text = "conv:8,3,p=1\n( conv:8,1\n| conv:16,1 ) add\n"
    with pytest.raises(ConvcalcError, match=r"net\.txt:2 .*add of 32x32x8, 32x32x16"):
        evaluate(parse_network(text, "net.txt"), parse_shape("32x32x8"))


# -- words ------------------------------------------------------------------------------


def test_parentheses_and_bars_may_touch_the_specs():
    spaced = parse_specs(["( conv:8,1 | conv:8,3,p=1 ) add"])
    glued = parse_specs(["(conv:8,1", "|conv:8,3,p=1)", "add"])
    assert [format_layer(s.layer) for s in spaced] == [format_layer(s.layer) for s in glued]
    assert format_layer(spaced[0].layer) == "( conv:8,1 | conv:8,3,p=1 ) add"
    assert isinstance(spaced[0].layer, Group) and len(spaced[0].layer.branches) == 2


def test_a_kernel_channel_bar_stays_inside_its_spec():
    (spec,) = parse_specs(["conv:k=1,0|0,1"])
    assert spec.layer.source == ("1,0|0,1",)


def test_groups_nest_and_repeat():
    result = run("32x32x8", "( ( conv:_,1 | ) add | conv:8,1 ) concat *2")
    assert str(result.output) == "32x32x24"
    assert len(result.layers) == 2
    leaves = placed_layers(
        parse_specs(["( ( conv:8,1 | ) add | conv:8,1 ) concat"]),
        run("32x32x8", "( ( conv:8,1 | ) add | conv:8,1 ) concat"),
    )
    assert [leaf.text for leaf in leaves] == [
        "( 2 branches ) concat › ( 2 branches ) add › conv:8,1",
        "( 2 branches ) concat › conv:8,1",
    ]


# -- a branch-free graph is the plain stack --------------------------------------------

PLAIN = st.lists(
    st.sampled_from(
        [
            "conv:8,3,p=1",
            "conv:16,1",
            "maxpool:2",
            "bn",
            "relu",
            "conv:8,3,s=2",
            "dwconv:3,p=1",
            "upsample:2",
            "avgpool:2,s=1",
            "ln",
            "scale",
        ]
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(PLAIN, st.data())
def test_a_branch_free_graph_gives_the_numbers_of_the_plain_stack(words, data):
    graph = []
    for i, word in enumerate(words):
        wrap = data.draw(st.sampled_from(["", "group", "mark"]))
        if wrap == "group":
            graph.append(f"( {word} ) {data.draw(st.sampled_from(['concat', 'add', 'mul']))}")
        else:
            graph += [word, f"@n{i}"] if wrap == "mark" else [word]
    try:
        plain = run("32x32x8", *words)
    except ConvcalcError:
        with pytest.raises(ConvcalcError):
            run("32x32x8", *graph)
        return
    grouped = run("32x32x8", *graph)
    assert grouped.output == plain.output
    assert grouped.total_params == plain.total_params
    assert grouped.total_macs == plain.total_macs
    assert grouped.total_buffers == plain.total_buffers
    assert grouped.total_memory == plain.total_memory
    assert grouped.layers[-1].receptive_field == plain.layers[-1].receptive_field
    assert not any(isinstance(s.layer, Mark) for s in parse_specs(words))


def test_a_sequence_in_parentheses_repeats_whole():
    result = run("32x32x8", "( ( | conv:8,3,p=1 ) add relu ) *3")
    assert [layer.spec for layer in result.layers] == ["( 2 branches ) add", "relu"] * 3
    single = run("32x32x8", "( conv:8,1 ) add *2")  # a merge of one branch: a group
    assert [layer.spec for layer in single.layers] == ["( 1 branch ) add"] * 2


def test_strict_judges_a_group_by_all_its_branches():
    ok = evaluate(
        parse_specs(["( conv:4,3,s=2,p=1 | conv:4,1,s=2 ) add"]), parse_shape("8x8x4"), strict=True
    )
    assert str(ok.output) == "4x4x4"  # the 1x1 shortcut skips a row, the 3x3 reads it
    with pytest.raises(ConvcalcError, match="never covered"):
        evaluate(
            parse_specs(["( conv:4,3,s=2 | conv:4,1,s=2 ) add"]), parse_shape("8x8x4"), strict=True
        )


@pytest.mark.parametrize(
    "text", ["( ( ( conv:8,1 ) *1000 ) *1000 ) *1000", "( ( conv:_,1 ) *1000 | ) add *1000"]
)
def test_repeats_are_bounded_before_they_are_written_out(text):
    with pytest.raises(ConvcalcError, match="layers; valid: at most 100,000"):
        parse_specs([text])
