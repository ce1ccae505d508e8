"""Judges over a real OpenAI-compatible HTTP server on 127.0.0.1: consensus, retries, cache, bad replies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.methods import PairContext
from mmedpo.curate import curate


class JudgeServer:
    """Replies like a judge would, per model name; ``failures`` are HTTP statuses sent before any answer."""

    def __init__(self):
        self.failures: list[int] = []
        self.answered: list[dict] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.failures:
                    status = server.failures.pop(0)
                    server.statuses.append(status)
                    return self._send(status, {"error": {"message": "try later"}})
                server.answered.append(body)
                server.statuses.append(200)
                reply = server.reply(body["model"], body["messages"][-1]["content"], body["messages"])
                self._send(200, {"object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @staticmethod
    def reply(model: str, prompt: str, messages: list) -> str:
        if model == "broken":
            return "As an AI I cannot rate this."
        if "CHOICE:" in prompt:
            return "CHOICE: none"  # no sample conflicts -> the judge rewrites
        if "HALLUCINATION:" in prompt:
            return "HALLUCINATION: a large mass in the left upper lung"
        if model == "med-a":
            return "AGREE" if "rated it 0.80" in prompt else "SCORE: 0.8"
        return "AGREE" if "rated it 0.80" in prompt else "SCORE: 0.4"  # med-b

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    server = JudgeServer()
    yield server
    server.close()


class SamplingModel:
    name = "sampler"

    def generate(self, images, prompts, config=None):
        return [["no", "no"] for _ in prompts]  # never conflicts with a "no" ground truth

    def describe(self):
        return {"name": "sampler"}


def _curate(synth_train, out, server, judges, tmp_path, **options):
    task, dataset = synth_train
    judge_options = {"base_url": server.base_url, "backoff": 0.0, "max_retries": 3,
                     "cache_dir": str(tmp_path / "openai-cache")}
    context = PairContext(task=task, samples=dataset, model=SamplingModel(), output_dir=out, options={
        "judges": judges, "judge_options": judge_options, "visual_pairs": False, "max_items": 3,
        "num_samples": 2, "weighting": "release", **options})
    return curate(context)


def test_consensus_retries_and_cache(synth_train, server, tmp_path):
    server.failures = [429, 500, 429]
    result = _curate(synth_train, tmp_path / "a", server, "openai:med-a,openai:med-b", tmp_path)
    assert server.statuses[:4] == [429, 500, 429, 200]
    assert len(result.pairs) == 3
    for pair in result.pairs:
        relevance = pair.extra["relevance"]
        assert pair.rejected == "a large mass in the left upper lung"
        assert pair.source in ("mmedpo-judge-rewrite", "mmedpo-judge-pick")
        # med-a proposes 0.8, med-b endorses it: consensus in one round
        assert relevance["consensus"] and relevance["scores_given"] == [0.8, 0.8] and pair.weight == 0.8
    paid = len(server.answered)
    # a fresh curation folder redoes every item, but each identical judge request is a disk-cache hit
    again = _curate(synth_train, tmp_path / "b", server, "openai:med-a,openai:med-b", tmp_path)
    assert len(server.answered) == paid
    assert [p.to_record() for p in again.pairs] == [p.to_record() for p in result.pairs]


def test_single_judge_ablation_and_disagreement(synth_train, server, tmp_path):
    result = _curate(synth_train, tmp_path / "s", server, "openai:med-b,openai:med-a", tmp_path, single_judge=True)
    assert all(p.extra["relevance"]["scores_given"] == [0.4] for p in result.pairs)
    both = _curate(synth_train, tmp_path / "d", server, "openai:med-b,openai:med-a", tmp_path, max_rounds=2)
    # med-b says 0.4, med-a disagrees with 0.8, med-b then endorses 0.8: mean of 0.4, 0.8, 0.8
    assert all(p.extra["relevance"]["scores_given"] == [0.4, 0.8, 0.8] for p in both.pairs)
    assert both.pairs[0].weight == pytest.approx(2.0 / 3.0)


def test_malformed_judge_output_is_retried_then_falls_back(synth_train, server, tmp_path):
    # fallbacks stop curation unless a share is allowed (tests/mmedpo/test_judge_outage.py)
    result = _curate(synth_train, tmp_path / "m", server, "openai:broken", tmp_path, judge_retries=1,
                     max_fallback_share=1.0)
    for pair in result.pairs:
        assert pair.source == "mmedpo-rules-fallback" and pair.rejected != pair.chosen
        assert pair.extra["relevance"]["source"] == "heuristic-fallback"


def test_unknown_judge_option_is_a_one_line_error(synth_train, server, tmp_path):
    from harness.core.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown option"):
        _curate(synth_train, tmp_path / "x", server, "openai:med-a", tmp_path, judge_options={"temperature": 1})
