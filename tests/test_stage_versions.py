"""Each stage's (STAGE, VERSION, config defaults) is pinned here (issue 10).

A run's key hashes only the config fields that differ from their defaults (``run.key_config``), so
changing a default changes what a run does without changing its key: an old run folder would be
served from cache for the new behaviour. So a changed (or removed) default must come with a VERSION
bump, and this table is where that is checked. What to do when a test here fails:

- you changed a default or removed a field: bump the module's ``VERSION`` (with a comment saying
  what changed), then update its row below;
- you added a field whose default keeps the old behaviour: no bump needed (the key ignores fields at
  their defaults); add the field and its default to the row so a later change to it is caught;
- a new stage or pipeline: add its row.

``python tests/test_stage_versions.py`` prints the current rows to paste.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

# module: (STAGE, VERSION, {field: default})
PINS: dict[str, tuple[str, int, dict]] = {
    'sharpset.evaluate.stage': ('eval', 2, {
        'engine': 'transformers',
        'engine_options': {},
        'models': [],
        'suites': ['all'],
        'split': 'test',
        'limit': 40,
        'suite_limits': {},
        'max_new_tokens': 192,
        'batch_size': 16,
        'shape_spec': 'concise-plain',
        'base': '',
        'pairs': '',
        'format_data': '',
        'invariance_families': ['sycophancy', 'jailbreak', 'noise', 'partner'],
        'heldout_families': ['sycophancy/authority', 'sycophancy/pushback', 'jailbreak/injection', 'noise/format'],
        'seed': 0,
    }),
    'sharpset.models.derive': ('derive', 1, {
        'model': 'gemma3-270m',
        'keep_layers': 0,
        'heal_data': '',
        'heal_steps': 0,
        'heal_lr': 0.0001,
        'heal_batch_size': 4,
        'heal_max_length': 256,
        'heal_seed': 0,
    }),
    'sharpset.pipelines.audit': ('audit', 4, {
        'size': 'medium',
        'aligned_model': 'smollm2-135m-instruct',
        'base_model': 'gemma3-270m',
        'embedder': 'minilm-l6',
        'pool': '',
        'margin': 0.1,
        'lr': 0.001,
        'batch_size': 4,
        'overrides': {},
        'cards': True,
        'seed': 0,
        'n': 0,
        'pool_factor': 0,
        'steps': 0,
        'seeds': 0,
        'n_pool': 0,
        'eval_mde': 0.0,
        'evidence_mde': 0.0,
        'eval_limit': -1,
        'eval_max_new_tokens': 0,
        'wrap_questions': -1,
        'keep_layers': 12,
        'heal_steps': 45,
        'alphas': [1.0],
        'warn_k': 4,
    }),
    'sharpset.pipelines.audit_warn': ('warn', 1, {
        'model': 'smollm2-135m-instruct',
        'split': 'dev',
        'k': 4,
        'max_new_tokens': 192,
        'temperature': 0.8,
        'top_p': 0.95,
        'seed': 0,
        'batch_size': 8,
        'drop_truncated': True,
    }),
    'sharpset.pipelines.quickstart': ('quickstart', 5, {
        'size': 'small',
        'aligned_model': 'smollm2-135m-instruct',
        'base_model': 'gemma3-270m',
        'embedder': 'minilm-l6',
        'pool': '',
        'n_pool': 0,
        'n_select': 0,
        'constraint_share': 0.5,
        'constrain_prompts': 0,
        'constrain_types': [
            'keywords:forbidden_words',
            'punctuation:no_comma',
            'keywords:letter_frequency',
            'length_constraints:number_sentences',
            'detectable_format:title',
            'change_case:capital_word_frequency',
            'keywords:frequency',
            'length_constraints:number_words',
            'detectable_content:postscript',
            'keywords:existence',
            'detectable_format:number_highlighted_sections',
            'detectable_content:number_placeholders',
            'detectable_format:number_bullet_lists',
            'length_constraints:number_paragraphs',
            'detectable_format:constrained_response',
        ],
        'constrain_k': 0,
        'selection': 'quality-diversity',
        'selector': '',
        'less_options': {},
        'train_steps': 0,
        'train_lr': 0.001,
        'train_batch_size': 4,
        'eval_limit': -1,
        'eval_max_new_tokens': 0,
        'eval_base_suites': ['format', 'format_unseen', 'shape', 'knowledge', 'speech_acts', 'dimensions', 'token_shift'],
        'eval_aligned_suites': ['invariance', 'format', 'knowledge'],
        'wrap_questions': -1,
        'overrides': {},
        'report': True,
        'seed': 0,
    }),
    'sharpset.pipelines.smoke': ('smoke', 1, {
        'aligned_model': 'smollm2-135m-instruct',
        'base_model': 'gemma3-270m',
        'embedder': 'minilm-l6',
        'n_prompts': 16,
        'max_new_tokens': 128,
        'temperature': 0.0,
        'top_p': 1.0,
        'seed': 0,
        'batch_size': 8,
    }),
    'sharpset.pipelines.sweep': ('sweep', 4, {
        'model': 'smollm2-135m-instruct',
        'targets': ['format', 'invariance', 'knowledge', 'constraints', 'mixed', 'random'],
        'sizes': [8, 16, 32, 64],
        'seeds': 2,
        'pool': '',
        'pool_size': 120,
        'spec': 'concise-plain',
        'min_conformance': 0.75,
        'constrain_prompts': 0,
        'constrain_k': 8,
        'constrain_model': '',
        'constraint_rows': '',
        'steps': 24,
        'lr': 0.001,
        'batch_size': 4,
        'eval_limit': 12,
        'eval_suite_limits': {},
        'eval_max_new_tokens': 96,
        'suites': ['all'],
        'selection': 'draw',
        'less_target_rows': 8,
        'selector': '',
        'judge': '',
        'less_options': {},
        'proxy': {},
    }),
    'sharpset.stages.constrain': ('constrain', 4, {
        'engine': 'transformers',
        'engine_options': {},
        'input': '',
        'model': 'smollm2-135m-instruct',
        'types': ['train'],
        'heldout_types': ['heldout'],
        'allow_heldout': False,
        'count_weights': [0.2, 0.4, 0.4],
        'k': 8,
        'temperature': 0.8,
        'top_p': 0.95,
        'max_new_tokens': 256,
        'repetition_penalty': 1.1,
        'keep_truncated': False,
        'answer_check': True,
        'gates': ['loop', 'pseudo_refusal'],
        'tie_break': 'quality_lm',
        'repair': False,
        'pairs': False,
        'limit': 0,
        'seed': 0,
        'batch_size': 16,
    }),
    'sharpset.stages.curate': ('curate', 7, {
        'input': '',
        'n': 300,
        'strategy': 'quality-diversity',
        'seed': 0,
        'control': None,
        'spec': None,
        'min_conformance': 1.0,
        'min_quality': 3.5,
        'quality_column': 'quality',
        'complexity_column': 'difficulty',
        'ifd_column': 'ifd_loss',
        'max_ifd': 1.0,
        'max_cosine': 0.9,
        'near_dup_cosine': 0.9,
        'category_column': 'auto',
        'quotas': {},
        'quota_within': 'random',
        'embed_field': 'instruction',
        'embedder': 'minilm-l6',
        'batch_size': 64,
        'labels': [],
        'task_column': 'task',
        'max_labels': 20,
        'gates': ['empty', 'loop', 'incomplete', 'pseudo_refusal'],
        'gates_untagged': 'text',
        'on_error': 'raise',
        'target': '',
        'selector': 'smollm2-135m-instruct',
        'warmup_fraction': 0.05,
        'warmup_min_rows': 100,
        'warmup_epochs': 4,
        'warmup_lr': 0.0002,
        'warmup_batch_size': 4,
        'selector_lora_r': 8,
        'selector_lora_alpha': 32,
        'selector_lora_dropout': 0.1,
        'selector_modules': ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
        'selector_max_length': 2048,
        'proj_dim': 8192,
        'proj_seed': 0,
        'projector': 'torch',
        'checkpoint_weights': 'lr',
        'target_task_column': '',
        'chunk_rows': 32,
    }),
    'sharpset.stages.dedup': ('dedup', 1, {
        'input': '',
        'field': 'instruction',
        'methods': ['exact', 'minhash', 'embedding'],
        'minhash_threshold': 0.8,
        'shingle_n': 3,
        'num_perm': 128,
        'embedding_threshold': 0.975,
        'embedder': 'minilm-l6',
        'batch_size': 64,
        'on_error': 'raise',
    }),
    'sharpset.stages.restyle': ('restyle', 1, {
        'engine': 'transformers',
        'engine_options': {},
        'input': '',
        'spec': 'lima-long',
        'model': 'smollm2-135m-instruct',
        'n': 0,
        'n_examples': 3,
        'max_new_tokens': 768,
        'drop_truncated': True,
        'max_prompt_tokens': 6144,
        'temperature': 0.0,
        'top_p': 1.0,
        'seed': 0,
        'min_content_recall': 0.25,
        'min_cosine': 0.35,
        'embedder': 'minilm-l6',
        'batch_size': 8,
        'on_error': 'raise',
    }),
    'sharpset.stages.synth': ('synth', 2, {
        'engine': 'transformers',
        'engine_options': {},
        'model': 'smollm2-135m-instruct',
        'n': 200,
        'instruction_temperature': 1.0,
        'instruction_top_p': 1.0,
        'instruction_max_tokens': 96,
        'single_line': False,
        'response_temperature': 0.0,
        'response_top_p': 1.0,
        'response_max_tokens': 384,
        'response_repetition_penalty': 1.1,
        'response_no_repeat_ngram': 0,
        'turns': 1,
        'system_prompts': [],
        'min_instruction_words': 3,
        'seed': 0,
        'batch_size': 16,
        'quotas': {},
        'quota_by': 'steer',
        'quota_judge': None,
        'quota_rounds': 3,
    }),
    'sharpset.stages.tag': ('tag', 4, {
        'engine': 'transformers',
        'engine_options': {},
        'input': '',
        'judge': 'smollm2-135m-instruct',
        'scorer': None,
        'scores': ['quality', 'difficulty', 'input_quality', 'category', 'ifd', 'lm', 'shape'],
        'min_mass': 0.01,
        'max_length': 2048,
        'batch_size': 8,
        'chunk': 32,
        'on_error': 'raise',
    }),
    'sharpset.stages.wrap': ('wrap', 2, {
        'engine': 'transformers',
        'engine_options': {},
        'input': '',
        'model': 'smollm2-135m-instruct',
        'families': ['sycophancy', 'jailbreak', 'noise', 'partner'],
        'heldout_families': ['sycophancy/authority', 'sycophancy/pushback', 'jailbreak/injection', 'noise/format'],
        'wrappers_file': '',
        'pairs_per_family': 1,
        'formats': ['open', 'mc'],
        'limit': 0,
        'max_new_tokens': 32,
        'temperature': 0.0,
        'top_p': 1.0,
        'drop_truncated': False,
        'seed': 0,
        'batch_size': 16,
    }),
    'sharpset.train': ('train', 5, {
        'model': 'smollm2-135m-instruct',
        'sft': '',
        'bct': '',
        'objective': 'sft',
        'act_weight': 0.0001,
        'act_layer_norm': False,
        'counterfactual_weight': 0.1,
        'counterfactual_norm': 'l1',
        'lora_r': 16,
        'lora_alpha': 32,
        'lora_dropout': 0.05,
        'target_modules': ['all-linear'],
        'trainable_tokens': ['auto'],
        'trainable_tokens_lr': 0.005,
        'full_finetune': False,
        'lr': 0.0002,
        'warmup_ratio': 0.03,
        'weight_decay': 0.0,
        'max_grad_norm': 1.0,
        'epochs': 1,
        'max_steps': 0,
        'min_steps': 32,
        'batch_size': 4,
        'grad_accum': 1,
        'max_length': 1024,
        'seed': 0,
        'bf16': False,
        'save_every': 50,
        'save_merged': True,
        'sft_backend': 'sharpset',
        'threads': 0,
    }),
}


def _defaults(cls) -> dict:
    """Defaults of the fields that enter the run key (``in_key=False`` knobs change no output)."""
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(cls) if f.metadata.get("in_key", True)}


# stages a pipeline runs as steps of its own, not offered by the CLI as stages (derive: the sweep's proxy arms;
# `sharpset derive` is a command of its own): module -> config class
INNER = {"sharpset.pipelines.audit_warn": "WarnConfig", "sharpset.models.derive": "DeriveConfig"}
# each eval suite's version: a suite's rows or metrics changed -> bump it (it is in every eval run's key) and its row
SUITE_VERSIONS = {'format': 4, 'format_unseen': 3, 'shape': 1, 'invariance': 2, 'knowledge': 1, 'speech_acts': 2,
                  'dimensions': 1, 'token_shift': 2, 'health': 3}


def test_every_suite_version_is_pinned():
    from sharpset.evaluate.suite import SUITES, get_suite

    assert {n: get_suite(n).version for n in SUITES} == SUITE_VERSIONS


def stage_modules() -> dict[str, type]:
    """Every stage the CLI offers and every recipe pipeline: module name -> config class."""
    from sharpset import cli, recipes

    out = {module: cls_name for module, cls_name, _ in cli.STAGES.values()}
    for fn_ref, cfg_ref in recipes.PIPELINES.values():
        out[fn_ref.partition(":")[0]] = cfg_ref.partition(":")[2]
    out.update(INNER)
    return {m: getattr(importlib.import_module(m), c) for m, c in out.items()}


def problems(module: str, cls: type, pin: tuple[str, int, dict] | None) -> list[str]:
    """What differs between a stage as it is and its pinned row (empty: in step)."""
    mod = sys.modules[module]
    now = _defaults(cls)
    if pin is None:
        return [f"{module}: not pinned; add its row to PINS"]
    stage, version, pinned = pin
    out = []
    if mod.STAGE != stage:
        out.append(f"{module}: STAGE is {mod.STAGE!r}, pinned {stage!r} (renaming a stage orphans its run folders)")
    if mod.VERSION != version:
        out.append(f"{module}: VERSION is {mod.VERSION}, pinned {version}: update its row (defaults included)")
        return out
    for name, value in pinned.items():
        if name not in now:
            out.append(f"{module}: field {name!r} was removed: bump VERSION and update the row")
        elif now[name] != value or type(now[name]) is not type(value):
            out.append(f"{module}: default of {name!r} changed {value!r} -> {now[name]!r} without a VERSION bump")
    for name in now.keys() - pinned.keys():
        out.append(f"{module}: new field {name!r} (default {now[name]!r}) is not pinned: add it to the row "
                   "(no VERSION bump needed if this default keeps the old behaviour)")
    return out


def test_every_stage_and_pipeline_is_pinned():
    mods = stage_modules()
    assert {"sharpset.stages.synth", "sharpset.train", "sharpset.pipelines.quickstart"} <= set(mods)
    missing = sorted(set(mods) - set(PINS))
    assert not missing, f"not pinned: {missing}; add their rows to PINS"


@pytest.mark.parametrize("module", sorted(PINS))
def test_defaults_match_the_pinned_version(module):
    mods = stage_modules()
    if module not in mods:
        pytest.fail(f"{module} is pinned but no longer a stage or pipeline; drop its row")
    bad = problems(module, mods[module], PINS[module])
    assert not bad, "\n".join(bad)


def test_a_changed_default_without_a_bump_is_caught():
    # the check must be able to fail: one default changed, one field added, one removed
    from sharpset.stages.tag import TagConfig

    # a row built from the stage as it is now (not PINS, so this test does not fail with a stale row)
    stage, version, pinned = "tag", sys.modules["sharpset.stages.tag"].VERSION, _defaults(TagConfig)
    assert problems("sharpset.stages.tag", TagConfig, (stage, version, pinned)) == []
    changed = dict(pinned, min_mass=pinned["min_mass"] * 2)
    assert any("default of 'min_mass' changed" in p for p in problems("sharpset.stages.tag", TagConfig,
                                                                      (stage, version, changed)))
    fewer = {k: v for k, v in pinned.items() if k != "chunk"}
    assert any("new field 'chunk'" in p for p in problems("sharpset.stages.tag", TagConfig, (stage, version, fewer)))
    more = dict(pinned, gone=1)
    assert any("'gone' was removed" in p for p in problems("sharpset.stages.tag", TagConfig, (stage, version, more)))
    assert any("VERSION is" in p for p in problems("sharpset.stages.tag", TagConfig, (stage, version + 1, pinned)))
    # 32.0 pinned where the default is now 32 (equal in Python) still counts as a change
    as_float = dict(pinned, chunk=float(pinned["chunk"]))
    assert problems("sharpset.stages.tag", TagConfig, (stage, version, as_float))


if __name__ == "__main__":  # print the current rows, to paste into PINS
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    for module, cls in sorted(stage_modules().items()):
        mod = sys.modules[module]
        print(f"    {module!r}: ({mod.STAGE!r}, {mod.VERSION}, {_defaults(cls)!r}),")
