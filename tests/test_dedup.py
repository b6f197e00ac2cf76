"""dedup: normalisation, each detector, clustering across detectors, order independence, outputs."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest

from sharpset.stages import dedup
from sharpset.config import from_mapping
from sharpset.stages.dedup import (DedupConfig, cosine_pairs, dedup_rows, normalize, shingles, text_of)
from sharpset.errors import UserError
from sharpset.records import content_id

LONG = "Write a detailed guide on planting tomatoes in a small backyard garden this spring season"


def sft(text: str, answer: str = "ok", **tags) -> dict:
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": answer}], **tags}


def fake_embedder(table: dict[str, list[float]] | None = None, dim: int = 16):
    """Texts in ``table`` get their vector; any other text a fixed pseudo-random one (never similar)."""
    calls = []
    if table:
        dim = len(next(iter(table.values())))

    def embed(texts):
        calls.append(list(texts))
        out = []
        for t in texts:
            if table and t in table:
                out.append(np.asarray(table[t], dtype=np.float32))
            else:
                seed = int.from_bytes(t.encode()[:8].ljust(8, b"\0"), "little") ^ len(t)
                out.append(np.random.default_rng(seed).standard_normal(dim).astype(np.float32))
        return np.stack(out)

    embed.calls = calls
    return embed


def only(*methods, **kw) -> DedupConfig:
    return DedupConfig(methods=list(methods), **kw)


# ---------------------------------------------------------------- exact


def test_normalize_nfkc_casefold_whitespace_end_punctuation():
    assert normalize("  Hello,\t WORLD?! ") == "hello, world"
    assert normalize("ＡＢＣ　ｄｅｆ") == "abc def"  # NFKC: full-width letters and space
    assert normalize("Straße") == normalize("STRASSE") == "strasse"  # casefold, not lower
    assert normalize("«Why?»") == "why"
    assert normalize("...") == ""
    assert normalize("a - b") == "a - b"  # inner punctuation is kept


def test_exact_links_case_space_and_end_punctuation_only():
    rows = [sft("How do I boil an egg?"), sft("how   do i BOIL an egg"), sft("How do I boil an egg!!"),
            sft("How do I, boil an egg?"), sft("How do I boil a egg?")]
    res = dedup_rows(rows, only("exact"))
    assert len(res.clusters) == 1 and len(res.clusters[0]) == 3
    assert len(res.kept) == 3
    assert res.report["rows_removed_by_method"] == {"exact": 2}
    assert len(res.pairs["exact"]) == 3  # every pair within the group


def test_empty_text_is_never_a_duplicate():
    rows = [sft("?", "a1"), sft("!", "a2")]  # instructions that normalise to ""
    assert len(dedup_rows(rows, only("exact", "minhash")).kept) == 2
    prompts = [{"messages": [{"role": "user", "content": "hi"}]}, {"messages": [{"role": "user", "content": "bye"}]}]
    res = dedup_rows(prompts, only("exact", "minhash", "embedding", field="response"), embed=fake_embedder())
    assert len(res.kept) == 2 and res.report["rows_without_text"] == 2


# ---------------------------------------------------------------- minhash


def test_minhash_finds_near_duplicate_not_a_different_text():
    near = LONG + " please"  # one word appended: 12 of 13 trigrams shared
    rows = [sft(LONG), sft(near), sft("Summarise the causes of the French Revolution in five short bullet points")]
    res = dedup_rows(rows, only("minhash"))
    ids = [content_id(r) for r in rows]
    assert res.pairs["minhash"] == {tuple(sorted(ids[:2]))}
    assert len(res.kept) == 2 and res.report["rows_removed_by_method"] == {"minhash": 1}
    # exact alone does not see it; a stricter threshold does not either
    assert not dedup_rows(rows, only("exact")).pairs["exact"]
    assert not dedup_rows(rows, only("minhash", minhash_threshold=0.98)).pairs["minhash"]


def test_minhash_pairs_verified_and_symmetric():
    words = LONG.split()
    rows = [sft(" ".join(words[:k] + ["really"] + words[k:])) for k in range(1, 12)]
    res = dedup_rows(rows, only("minhash", minhash_threshold=0.5, shingle_n=2))
    assert res.pairs["minhash"]  # neighbouring insertions are near-duplicates
    assert all(a < b for a, b in res.pairs["minhash"])
    for line in res.cluster_rows:  # every LSH candidate kept was verified by its estimated Jaccard
        for a, b, method, score in line["pairs"]:
            assert method == "minhash" and score >= 0.5


def test_shingles():
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("a b", 3) == {"a b"}  # shorter than n: one shingle
    assert shingles("a, b. c", 1) == {"a", "b", "c"}
    assert shingles("", 2) == set()


# ---------------------------------------------------------------- embedding


def test_embedding_pairs_with_fake_embedder():
    a, b, c = "first text", "second text", "third text"
    v = np.zeros(8)
    va, vb, vc = v.copy(), v.copy(), v.copy()
    va[0], vb[0], vb[1], vc[2] = 1.0, 1.0, 0.15, 3.0  # cos(a, b) = 1/sqrt(1.0225) = 0.9889
    emb = fake_embedder({a: va, b: vb, c: vc})
    rows = [sft(a), sft(b), sft(c)]
    res = dedup_rows(rows, only("embedding"), embed=emb)
    assert res.pairs["embedding"] == {tuple(sorted((content_id(rows[0]), content_id(rows[1]))))}
    score = res.cluster_rows[0]["pairs"][0][3]
    assert score == pytest.approx(1 / np.sqrt(1.0225), abs=1e-6)
    assert not dedup_rows(rows, only("embedding", embedding_threshold=0.99), embed=emb).pairs["embedding"]
    assert emb.calls[0] == sorted(emb.calls[0])  # embedded in a canonical (sorted) order


def test_embedding_identical_texts_embedded_once():
    emb = fake_embedder()
    rows = [sft("same"), sft("same", answer="other answer"), sft("different")]
    res = dedup_rows(rows, only("embedding"), embed=emb)
    assert emb.calls == [["different", "same"]]
    assert len(res.kept) == 2


def test_cosine_pairs_blocked_equals_brute_force(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5))
    x[10] = x[3] * 2.0 + 1e-3  # near-copies
    x[40] = 0.0  # a zero vector never pairs
    monkeypatch.setattr(dedup, "_BLOCK_ELEMS", 7 * 60)  # several blocks
    pairs, scores = cosine_pairs(x, 0.8)
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = xn @ xn.T
    want = {(i, j) for i in range(60) for j in range(i + 1, 60) if sim[i, j] >= 0.8 and 40 not in (i, j)}
    assert set(pairs) == want and (3, 10) in want
    assert np.all(scores >= 0.8)


# ---------------------------------------------------------------- clustering


def _chain_rows():
    """A -exact- B -minhash- C -embedding- D, plus an unrelated E."""
    a = sft(LONG)
    b = sft(LONG.upper())
    c = sft(LONG.upper() + " today")
    d = sft("Tomato planting tutorial for tiny yards")
    e = sft("What is the capital of Mongolia?")
    vec = np.eye(4)
    emb = fake_embedder({c["messages"][0]["content"]: vec[0], d["messages"][0]["content"]: vec[0],
                         a["messages"][0]["content"]: vec[1], b["messages"][0]["content"]: vec[2],
                         e["messages"][0]["content"]: vec[3]})
    return [a, b, c, d, e], emb


def test_union_find_clusters_across_methods_and_attribution():
    rows, emb = _chain_rows()
    res = dedup_rows(rows, DedupConfig(), embed=emb)
    ids = [content_id(r) for r in rows]
    assert len(res.clusters) == 1 and sorted(res.clusters[0]) == sorted(ids[:4])
    assert res.report["rows_removed_by_method"] == {"exact": 1, "minhash": 1, "embedding": 1}
    assert res.report["cluster_size_histogram"] == {"1": 1, "4": 1}
    rep = min(ids[:4])
    assert res.clusters[0][0] == rep
    kept = {r["id"]: r for r in res.kept}
    assert set(kept) == {rep, ids[4]}
    assert kept[rep]["dup_cluster"] == rep and kept[rep]["dup_cluster_size"] == 4
    assert kept[ids[4]]["dup_cluster"] == ids[4] and kept[ids[4]]["dup_cluster_size"] == 1
    # no single method links all four
    for m in ("exact", "minhash", "embedding"):
        sub = dedup_rows(rows, only(m), embed=emb)
        assert all(len(c) < 4 for c in sub.clusters)


def test_representative_independent_of_input_order():
    rows, emb = _chain_rows()
    rows += [sft("Explain recursion simply."), sft("explain recursion simply"), sft("Explain recursion simply.",
             answer="a different answer"), sft("Give me a haiku about rain."), sft("Give me a haiku about rain.")]
    ref = None
    for seed in range(8):
        perm = rows[:]
        random.Random(seed).shuffle(perm)
        res = dedup_rows(perm, DedupConfig(), embed=emb)
        got = ({r["id"]: (r["dup_cluster"], r["dup_cluster_size"]) for r in res.kept}, res.clusters,
               res.pairs, res.report)
        # kept rows keep their relative input order
        pos = {}
        for i, r in enumerate(perm):
            pos.setdefault(content_id(r), i)  # byte-identical rows: the first one is kept
        assert [pos[r["id"]] for r in res.kept] == sorted(pos[r["id"]] for r in res.kept)
        if ref is None:
            ref = got
        assert got == ref
    for members in ref[1]:
        assert members[0] == min(members)  # the smallest content id represents the cluster


def test_representative_uses_content_id_not_a_given_id():
    rows = [sft("Same question", id="zzz-first"), sft("same question", id="aaa-second")]
    res = dedup_rows(rows, only("exact"))
    want = min(rows, key=content_id)
    assert [r["id"] for r in res.kept] == [want["id"]]


def test_counts_add_up():
    rows, emb = _chain_rows()
    rows = rows * 3  # byte-identical copies share an id
    res = dedup_rows(rows, DedupConfig(), embed=emb)
    c = res.report["counts"]
    assert c["read"] == c["written"] + c["dropped"] + c["rejected"] == len(rows)
    assert c["written"] == len(res.kept) == 2
    assert sum(res.report["rows_removed_by_method"].values()) == c["dropped"]
    hist = res.report["cluster_size_histogram"]
    assert sum(int(k) * v for k, v in hist.items()) == len(rows)
    assert sum(hist.values()) == len(res.kept)


def test_fields_and_kinds():
    row = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"},
                        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
                        {"role": "assistant", "content": "a2"}]}
    # the instruction is the turn the answer replies to (one definition, sharpset.records.instruction_of)
    assert text_of(row, "instruction") == "q2"
    assert text_of(row, "response") == "a2"
    assert text_of({"messages": row["messages"][:-1]}, "instruction") == "q2"  # no answer yet: last user turn
    assert text_of(row, "conversation") == "sys\nq1\na1\nq2\na2"
    pc = {"prompt": "p", "completion": "c"}
    assert (text_of(pc, "instruction"), text_of(pc, "response")) == ("p", "c")
    rows = [sft("q one", "Same answer."), sft("q two", "same answer")]
    assert len(dedup_rows(rows, only("exact")).kept) == 2
    assert len(dedup_rows(rows, only("exact", field="response")).kept) == 1


def test_config_check_and_yaml_keys():
    cfg = from_mapping(DedupConfig, {"input": "x.jsonl", "methods": "exact,minhash", "embedding_threshold": "0.9"})
    assert cfg.methods == ["exact", "minhash"] and cfg.embedding_threshold == 0.9
    bad = DedupConfig(input="x", field="title", methods=["exact", "simhash"], minhash_threshold=1.0,
                      embedding_threshold=0, shingle_n=0)
    fields = {f for f, _ in bad.check()}
    assert {"field", "methods", "minhash_threshold", "embedding_threshold", "shingle_n"} <= fields
    assert [f for f, _ in DedupConfig(input="x", minhash_threshold=0.99).check()] == ["minhash_threshold"]
    assert [f for f, _ in DedupConfig().check()] == ["input"]
    with pytest.raises(UserError, match="methods"):
        from_mapping(DedupConfig, {"input": "x", "methods": []})
    with pytest.raises(ValueError, match="field"):
        dedup_rows([sft("a")], replace(DedupConfig(), field="nope"))


# ---------------------------------------------------------------- stage


def test_run_writes_outputs(tmp_path):
    from sharpset.dataio import write_records
    from sharpset.run import RunDir

    src = tmp_path / "in.jsonl"
    rows = [sft("How do I boil an egg?"), sft("how do I boil an egg"), sft(LONG), sft(LONG + " please"),
            sft("Name three rivers in Africa.")]
    write_records(rows, src)
    with open(src, "a") as f:
        f.write('{"messages": "not a list"}\n')
    cfg = DedupConfig(input=str(src), methods=["exact", "minhash"], on_error="skip")
    run = RunDir.open(tmp_path / "r", "dedup", 1, cfg)
    logs = []
    report = dedup.run(cfg, run, log=logs.append)
    out = run.path
    kept = [json.loads(l) for l in (out / "deduped.jsonl").read_text().splitlines()]
    assert len(kept) == 3 and all("dup_cluster" in r and "dup_cluster_size" in r for r in kept)
    assert [r["messages"][0]["content"] for r in kept] == [
        min(rows[:2], key=content_id)["messages"][0]["content"],
        min(rows[2:4], key=content_id)["messages"][0]["content"], "Name three rivers in Africa."]
    clusters = [json.loads(l) for l in (out / "clusters.jsonl").read_text().splitlines()]
    assert len(clusters) == 2 and all(c["size"] == 2 for c in clusters)
    on_disk = json.loads((out / "dedup_report.json").read_text())
    assert on_disk["counts"] == {"read": 6, "written": 3, "dropped": 2, "rejected": 1} == report["counts"]
    assert on_disk["rows_removed_by_method"] == {"exact": 1, "minhash": 1}
    assert on_disk["thresholds"]["minhash"]["jaccard"] == cfg.minhash_threshold
    assert (out / "rejected.jsonl").exists()
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["counts"] == on_disk["counts"]
    assert {"deduped.jsonl", "clusters.jsonl", "dedup_report.json", "rejected.jsonl"} <= set(man["outputs"])
    assert "kept 3" in logs[-1]


@pytest.mark.embedded
def test_embedded_minilm_finds_paraphrase_at_lowered_threshold():
    import torch

    torch.set_num_threads(1)
    para = ("How long should I boil an egg to get a runny yolk?",
            "For a soft, runny yolk, how many minutes should an egg boil?")  # cosine ~0.94 (measured)
    others = ["Write a regular expression that matches a valid IPv4 address.",
              "What wine goes well with grilled salmon?", "Describe the rules of cricket in simple terms.",
              "How do noise-cancelling headphones actually cancel noise?",
              "Give me a mnemonic for the order of the planets.", "Why do we have leap years?",
              "How do I keep my cast iron pan from rusting?", "What causes the northern lights?"]
    rows = [sft(t) for t in (*para, *others)]
    embed = dedup.default_embedder("minilm-l6")
    low = dedup_rows(rows, only("embedding", embedding_threshold=0.9), embed=embed)
    assert low.pairs["embedding"] == {tuple(sorted(content_id(r) for r in rows[:2]))}
    assert len(low.kept) == len(rows) - 1
    assert not dedup_rows(rows, only("embedding"), embed=embed).pairs["embedding"]  # 0.975 misses it
