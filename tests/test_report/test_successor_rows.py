"""A2U's successors in the report: the FADE / SAPA / GCA published rows (with source and checkpoint) in "paper vs
this run", and the complexity table (measured params and MACs of every registered variant, cited GCA), whose
committed measurements match freshly built networks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.report.build import PAPER_NUMBERS, traced_cells
from pipeline.report.cells import SourceReader, text_shows_value
from pipeline.report.complexity import COMPLEXITY, complexity_table
from pipeline.report.render import render_html, render_markdown
from tests.test_report.test_report import _build

#: Published Composition-1k rows (SAD, MSE, Grad, Conn) from the FADE / SAPA / GCA READMEs (successors_spec §2.7,
#: §3.5; anchors §2.1).
PUBLISHED = {"FADE": (31.10, 0.0073, 14.52, 28.11), "FADE-Lite": (31.36, 0.0075, 14.83, 28.21),
             "SAPA-I": (34.25, 0.0091, 18.93, 32.09), "SAPA-B": (31.19, 0.0079, 15.48, 28.30),
             "SAPA-G": (30.98, 0.0077, 15.59, 27.96), "GCA Matting": (35.28, 0.0091, 16.92, 32.53)}
#: Parameters of the paper-width matting network over bilinear (8,049,003), as measured when the pairs landed.
EXTRA_PARAMS = {"a2u": 40_232, "fade": 124_008, "fade-lite": 27_216, "sapa": 68_096, "sapa-g": 101_636,
                "dysample": 16_512, "dysample-plus": 32_896}


@pytest.fixture(scope="module")
def report_repo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("successors")
    return root, _build(root)


def _paper_rows(report) -> dict[str, list]:
    return {row[0].text: row for row in report.tables["paper_vs_reproduced"].rows if "this run" not in row[0].text}


def test_published_rows_are_stored_with_their_source_and_checkpoint() -> None:
    rows = yaml.safe_load(PAPER_NUMBERS.read_text())["rows"]
    by_label = {row["label"].split(" (")[0]: row for row in rows}
    for label, numbers in PUBLISHED.items():
        row = by_label[label]
        assert (row["sad"], row["mse"], row["grad"], row["conn"]) == numbers, label
        assert "README" in row["source"], label
    assert "FADE README" in by_label["FADE"]["source"] and "SAPA README" in by_label["SAPA-G"]["source"]
    assert "GCA-Matting README" in by_label["GCA Matting"]["source"]
    assert "epoch 27" in by_label["FADE"]["checkpoint"] and "31.18" in by_label["FADE"]["checkpoint"]
    assert by_label["FADE-Lite"]["checkpoint"].startswith("last epoch")
    assert by_label["GCA Matting"]["other_network"] and by_label["GCA Matting"]["params"] is None
    assert not any(row["variant"].startswith("dysample") for row in rows)  # never run on matting: no row


def test_paper_vs_this_run_shows_the_successor_rows(report_repo) -> None:
    _, report = report_repo
    rows = _paper_rows(report)
    for label, numbers in PUBLISHED.items():
        (row,) = [r for text, r in rows.items() if text.startswith(label + " (") or text == label]
        assert tuple(c.value for c in row[2:6]) == numbers, label
        assert row[1].text == "Composition-1k (Adobe, 1000 test images)" and "README" in row[6].text
    fade = next(text for text in rows if text.startswith("FADE ("))
    assert "best on the test set, epoch 27" in fade and "SAD 31.18" in fade
    assert "last epoch" in next(text for text in rows if text.startswith("FADE-Lite"))
    caption = report.tables["paper_vs_reproduced"].caption
    assert "GCA-Matting README" in caption and "40% model complexity" in caption


def test_complexity_table_measures_every_variant_and_cites_gca(report_repo) -> None:
    _, report = report_repo
    table = report.tables["complexity"]
    rows = {row[0].text: row for row in table.rows}
    col = {name: table.header.index(name) for name in table.header}
    (bilinear,) = [r for t, r in rows.items() if "(pair bilinear)" in t]
    assert bilinear[col["params"]].value == 8_049_003 and bilinear[col["params"]].text == "8,049,003"
    assert bilinear[col["GMACs at 512²"]].text == "52.56"
    for variant, extra in EXTRA_PARAMS.items():
        (row,) = [r for t, r in rows.items() if f"(pair {variant})" in t]
        delta = row[col["Δ params vs bilinear"]]
        assert delta.derived["value"] == extra and delta.text == f"+{extra:,}", variant
        assert row[col["GMACs at 512²"]].value > bilinear[col["GMACs at 512²"]].value, variant
    (fade,) = [r for t, r in rows.items() if "(pair fade)" in t]
    assert fade[col["published (authors' READMEs)"]].text == "+0.12M params; +8.85 GFLOPs"
    (gca,) = [r for t, r in rows.items() if t.startswith("GCA Matting")]
    assert gca[col["params"]].text.startswith("not published") and gca[col["GMACs at 512²"]].text == "not published"
    assert "GCA-Matting README" in gca[col["source"]].text
    cells = [c for c in traced_cells(report) if c["table"] == "complexity"]
    assert len(cells) == 8 * 2 + 7 * 2  # params and GMACs per network, two deltas per non-baseline one
    reader = SourceReader(report_repo[0])
    for cell in cells:
        assert cell["source"] == "results/report/network_complexity.json"
        assert reader.node(report_repo[0] / cell["source"], *cell["key"]) == cell["value"]
        assert text_shows_value(cell["text"], cell.get("derived", {}).get("value", cell["value"])), cell


def test_both_renderings_show_the_complexity_table(report_repo) -> None:
    repo, report = report_repo
    md = render_markdown(report, repo / "results" / "report.md")
    html = render_html(report)
    assert "### Model complexity" in md and "| 8,049,003 |" in md
    assert md.index("## Paper vs this run") < md.index("### Model complexity") < md.index("## Matting variants")
    assert "<h3>Model complexity</h3>" in html and ">8,049,003<" in html


def test_no_complexity_file_no_table(tmp_path: Path) -> None:
    paper_json = tmp_path / "paper.json"
    paper_json.write_text(json.dumps(yaml.safe_load(PAPER_NUMBERS.read_text())))
    assert complexity_table(SourceReader(tmp_path), tmp_path, paper_json, source=tmp_path / "missing.json") is None


def test_committed_complexity_matches_freshly_built_networks() -> None:
    """The committed counts are this code's: every variant's parameters, and the baseline's MACs at 512²."""
    from models.matting.complexity import default_variants
    from models.matting.flops import count_flops
    from models.matting.network import A2UMattingNet

    data = json.loads(COMPLEXITY.read_text())
    assert (data["size"], data["width"]) == (512, 1.0)
    assert tuple(data["networks"]) == default_variants()
    for variant, node in data["networks"].items():
        net = A2UMattingNet(upsampler=variant, width=1.0)
        assert node["params"] == sum(p.numel() for p in net.parameters()), variant
        assert node["gmacs"] == node["macs"] / 1e9
    assert data["networks"]["bilinear"]["params"] == 8_049_003
    counted = count_flops(A2UMattingNet(upsampler="bilinear"), 512)
    assert data["networks"]["bilinear"]["macs"] == counted["macs"] == 52_564_131_840
