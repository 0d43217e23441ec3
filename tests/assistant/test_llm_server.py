"""The server backend (langchain-openai) against real local HTTP servers: the ChatModel contract
on llama-cpp-python's OpenAI-compatible server, and the failures only a server has."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from assistant.llm import ChatLLM, ChatModel, estimate_tokens, load_llm
from core.errors import LLMTimeoutError, LLMUnavailableError
from core.settings import load_settings
from tests.assistant.contract import CONTEXT, MODEL_NAME, ChatModelContract

MSGS: list[BaseMessage] = [HumanMessage(content="Say hello.")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_llm(
    tmp_path: Path, port: int, timeout_s: float = 20.0, model_name: str | None = None
) -> ChatLLM:
    settings = load_settings(
        data_dir=tmp_path,
        llm={
            "backend": "openai",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model_name": model_name or f"test-model-{port}",
            "timeout_s": timeout_s,
            "max_retries": 1,
            "context_window": CONTEXT,
        },
    )
    return load_llm(settings)


@pytest.mark.slow
def test_unreachable_server_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    llm = _server_llm(tmp_path, _free_port())  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="unreachable"):
        list(llm.stream(MSGS, 8))
    assert time.monotonic() - t0 < 5.0


@pytest.mark.slow
def test_server_that_never_answers_times_out(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)  # read nothing, answer nothing
            except OSError:
                continue

    t = threading.Thread(target=accept_and_hold, daemon=True)
    t.start()
    try:
        llm = _server_llm(tmp_path, port, timeout_s=1.0)
        t0 = time.monotonic()
        with pytest.raises(LLMTimeoutError):
            list(llm.stream(MSGS, 8))
        assert time.monotonic() - t0 < 8.0  # 1 s timeout x (1 try + 1 retry) + backoff
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        listener.close()


@pytest.fixture(scope="module")
def llama_server(gguf_path: Path) -> Iterator[int]:
    """llama-cpp-python's OpenAI-compatible server on the packaged small GGUF."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--chat_format",
            "gemma",
            # its default cuts a running stream short when the next request arrives
            "--interrupt_requests",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start") from None
                time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.slow
class TestOpenAICompatibleServer(ChatModelContract):
    # llama-cpp-python's server sends no usage in a stream, although ChatOpenAI asks for it
    reports_usage = False

    @pytest.fixture(scope="class")
    def chat_model(self, tmp_path_factory: pytest.TempPathFactory, llama_server: int) -> ChatModel:
        return _server_llm(tmp_path_factory.mktemp("llm"), llama_server, model_name=MODEL_NAME)

    def test_token_counts_are_an_estimate(self, chat_model: ChatModel) -> None:
        assert chat_model.exact_tokens is False  # the server tokenizes; we budget with an estimate
        assert estimate_tokens(MSGS) > 0


def test_each_configuration_gets_its_own_client(tmp_path: Path) -> None:
    """load_llm shares a model per configuration, not per server: a second configuration with
    another timeout must not get the first one's client (nothing is contacted here)."""
    port = _free_port()
    first = _server_llm(tmp_path, port, timeout_s=5.0)
    assert _server_llm(tmp_path, port, timeout_s=5.0) is first
    other = _server_llm(tmp_path, port, timeout_s=9.0)
    assert (first.timeout_s, other.timeout_s) == (5.0, 9.0)
