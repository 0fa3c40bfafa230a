"""Behaviour pinned across refactors: `streamgaze demo` writes byte-identical question files for seeds 0 and 5.

The hashes were recorded before the package was reorganised (issue 15). A change that alters questions on
purpose updates them here, in the same commit, and says why."""
import hashlib
import os
import subprocess
import sys

import pytest

GOLDEN = {
    0: {
        "past_gaze_sequence_matching.jsonl": "b14b69e69d250fdc7bb061a0b51d612416d24b772ada96f6c847a5fad92442cf",
        "past_non_fixated_object_identification.jsonl": "15f73d1cb02ddf69c65f0722442aaa68002bfa7c1ee2f7d1549773be4ce3af24",
        "past_object_transition_prediction.jsonl": "ba669bd596da7067e104d675be9a78689fe7770a60a95d6263d18639001509ea",
        "past_scene_recall.jsonl": "b21671b5e0844974583a8825a57452e6e2ccdd64dd7f47aee46a76f7ed650890",
        "present_future_action_prediction.jsonl": "5b472b0376572c86fe6c1ba61adc5a7b794bb5d07ddf819573d180ff0672ddea",
        "present_object_attribute_recognition.jsonl": "d6767dc0fb2f8dac64f9707830d8cce2e68e119c23a937ef3507f9ab2e1170b0",
        "present_object_identification_easy.jsonl": "be1607bb00b9aa7b7718d6234a5c721a362488cceeb041311acf2819f3cd2792",
        "present_object_identification_hard.jsonl": "83ff89af02cd2c531386fef58c4e38ba4c469167061fdce41e2b2278c73de602",
        "proactive_gaze_triggered_alert.jsonl": "7dc63f0e1cd94d9a282e3261b505c3fa8d09ace43c6584237392a220c7e99bfb",
        "proactive_object_appearance_alert.jsonl": "7484412882e115d893731917daf87e93595bb12e64883599d108931073af045d",
    },
    5: {
        "past_gaze_sequence_matching.jsonl": "ab94e9bfa5165dc87be203fa7fa10cc5cc012933bef2c37f26fbad6781568b83",
        "past_non_fixated_object_identification.jsonl": "f66d5c31a3b591da6ff1e8bf4d813d21ebeb236db47616ef734913e3d58841c0",
        "past_object_transition_prediction.jsonl": "2a48a0a04486f61e5aa68c43c0a8572407faa1e0f4fddeffdda6013374a058ba",
        "past_scene_recall.jsonl": "97ebbe7a7197ff958e08dde3ad46973e12385fac0c97a339b388dd0b4875740b",
        "present_future_action_prediction.jsonl": "d490e4c5a33a5b02188ebf2d85e305c85bb1b21201b0c2d84d4f09b3961d742b",
        "present_object_attribute_recognition.jsonl": "e950d47f698b1eaa457dc64047a9a320ba3c02319c00349a991ef49269bf63cc",
        "present_object_identification_easy.jsonl": "dfbb2ac34670587b992b4dac593098a1cd9707608229accb1a8480047df54818",
        "present_object_identification_hard.jsonl": "76a8588993e2d570e72d303b92fab19fbe46225845adbe841b51ddb9b86560ce",
        "proactive_gaze_triggered_alert.jsonl": "23f7b48657b2546350221b52214bb775cc232a9509a732bade041a120d1d0750",
        "proactive_object_appearance_alert.jsonl": "906814c0fe0e1a3613036f862ebf835796fb6888d8a6ba3635ff583743233956",
    },
}


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """Both seeds at once (one process per core), as a user runs them."""
    root = tmp_path_factory.mktemp("golden")
    env = {**os.environ, "STREAMGAZE_PROGRESS": "0"}
    procs = {seed: subprocess.Popen([sys.executable, "-m", "streamgaze.cli", "demo", "--out", str(root / str(seed)), "--seed", str(seed)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in GOLDEN}
    for seed, proc in procs.items():
        output, _ = proc.communicate()
        assert proc.returncode == 0, output
    return root


@pytest.mark.parametrize("seed", sorted(GOLDEN))
def test_demo_questions_are_byte_identical_to_the_recorded_ones(demo_runs, seed):
    qa = demo_runs / str(seed) / "qa"
    written = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(qa.glob("*.jsonl"))}
    assert written == GOLDEN[seed]
