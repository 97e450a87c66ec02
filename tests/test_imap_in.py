"""The IMAP agent (mail/transport/imap_in.py): pure helpers, then the real thing against a real Dovecot
(IMAPS on loopback, mail delivered over LMTP). A stand-in pipeline with the real
`accept(raw, transport)` signature records what the agent hands over; each test gets its own
mailbox so no test sees another's mail."""
from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from bot.config.settings import ImapSettings
from mail.transport.imap_in import ImapAgent, backoff, fetched_body, has_exists, parse_uids

pytest_plugins = ("tests.dovecot",)
pytestmark = pytest.mark.timeout(30)

_n = itertools.count(1)


def mail(tag: str) -> bytes:
    return (f"From: Alice <alice@example.com>\r\nTo: confbot@localhost\r\n"
            f"Subject: Conference {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\r\n"
            f"Please book a conference ({tag}).\r\n").encode()


def message_id(raw: bytes) -> str:
    return re.search(rb"Message-ID: (<[^>]+>)", raw).group(1).decode()


# --- pure helpers -----------------------------------------------------------------------------

def test_only_exists_pushes_count_as_new_mail():
    assert has_exists([b"4 EXISTS", b"1 RECENT"])
    assert not has_exists([b"1 RECENT"])
    assert not has_exists([b"3 EXPUNGE"])
    assert not has_exists([b"2 FETCH (FLAGS (\\Seen))"])
    assert not has_exists("stop_wait_server_push")  # aioimaplib's re-IDLE marker


def test_backoff_doubles_up_to_the_cap():
    assert list(itertools.islice(backoff(0.5, 5), 6)) == [0.5, 1, 2, 4, 5, 5]


def test_search_and_fetch_responses_are_read_correctly():
    assert parse_uids([b"3 7 12", b"SEARCH completed"]) == [3, 7, 12]
    assert parse_uids([b"", b"SEARCH completed"]) == []
    body = bytearray(b"Subject: x\r\n\r\nhi\r\n")
    assert fetched_body([b"1 FETCH (UID 3 BODY[] {19}", body, b")", b"OK"]) == bytes(body)
    assert fetched_body([b"OK"]) is None


# --- against a real Dovecot -------------------------------------------------------------------

class StandInPipeline:
    def __init__(self):
        self.accepted: list[bytes] = []
        self.arrived = asyncio.Queue()

    async def accept(self, raw: bytes, transport: str) -> int:
        assert transport == "imap"
        self.accepted.append(raw)
        journal_id = len(self.accepted)
        self.arrived.put_nowait((journal_id, raw))
        return journal_id


def agent_for(dovecot, box, pipeline, port=None, **kw) -> ImapAgent:
    settings = ImapSettings(host="127.0.0.1", port=port or dovecot.imaps_port, user=box.user,
                            password=box.password, tls=True)
    return ImapAgent(settings, pipeline.accept, ssl_context=dovecot.ssl_context(),
                     backoff_first=0.1, backoff_cap=0.5, **kw)


async def wait_until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def run_with_agent(agent, scenario):
    async def main():
        task = asyncio.create_task(agent.run())
        try:
            return await scenario()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return asyncio.run(main())


def test_unseen_mail_is_fetched_on_start_and_marked_seen_only_after_mark_seen(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    dovecot.deliver(box, mail("early-1"))
    dovecot.deliver(box, mail("early-2"))
    pipeline = StandInPipeline()
    agent = agent_for(dovecot, box, pipeline)

    async def scenario():
        got = [await asyncio.wait_for(pipeline.arrived.get(), 5) for _ in range(2)]
        await asyncio.sleep(0.3)
        flags_before = dovecot.flags(box)
        first_id, _ = next(g for g in got if message_id(g[1]) == "<early-1@example.com>")
        agent.mark_seen(first_id)
        await wait_until(lambda: "S" in dovecot.flags(box)["<early-1@example.com>"])
        return got, flags_before, dovecot.flags(box)

    got, before, after = run_with_agent(agent, scenario)
    assert sorted(message_id(raw) for _, raw in got) == ["<early-1@example.com>",
                                                         "<early-2@example.com>"]
    assert "S" not in before["<early-1@example.com>"]  # BODY.PEEK: reading is not seeing
    assert "S" in after["<early-1@example.com>"]
    assert "S" not in after["<early-2@example.com>"]   # its replies have not gone out


def test_mail_arriving_during_idle_is_picked_up_and_each_mail_handed_over_once(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    pipeline = StandInPipeline()
    agent = agent_for(dovecot, box, pipeline)

    async def scenario():
        await wait_until(lambda: agent.idles >= 1)
        await asyncio.to_thread(dovecot.deliver, box, mail("idle-1"))
        first = await asyncio.wait_for(pipeline.arrived.get(), 5)
        agent.mark_seen(first[0])  # wakes IDLE, stores \Seen, re-IDLEs
        await asyncio.to_thread(dovecot.deliver, box, mail("idle-2"))
        second = await asyncio.wait_for(pipeline.arrived.get(), 5)
        await asyncio.sleep(0.5)
        return first, second

    first, second = run_with_agent(agent, scenario)
    assert message_id(first[1]) == "<idle-1@example.com>"
    assert message_id(second[1]) == "<idle-2@example.com>"
    assert len(pipeline.accepted) == 2  # the unseen idle-2 was not fetched twice
    assert "S" in dovecot.flags(box)["<idle-1@example.com>"]


def test_idle_is_renewed_before_the_limit_and_still_delivers(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    pipeline = StandInPipeline()
    agent = agent_for(dovecot, box, pipeline, idle_seconds=0.3)

    async def scenario():
        await wait_until(lambda: agent.idles >= 4)
        await asyncio.to_thread(dovecot.deliver, box, mail("renewed"))
        return await asyncio.wait_for(pipeline.arrived.get(), 5)

    _, raw = run_with_agent(agent, scenario)
    assert message_id(raw) == "<renewed@example.com>"
    assert agent.sessions == 1  # renewing IDLE is not reconnecting


class CuttableProxy:
    """A loopback TCP proxy in front of Dovecot whose connections the test can cut."""

    def __init__(self, port: int):
        self.upstream = port
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers += [writer, up_writer]

        async def pump(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self):
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()


def test_a_cut_connection_is_reestablished_with_backoff_and_mail_still_arrives(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    pipeline = StandInPipeline()

    async def main():
        proxy = await CuttableProxy(dovecot.imaps_port).start()
        agent = agent_for(dovecot, box, pipeline, port=proxy.port)
        task = asyncio.create_task(agent.run())
        try:
            await wait_until(lambda: agent.idles >= 1)
            proxy.cut()
            await asyncio.to_thread(dovecot.deliver, box, mail("after-cut"))
            _, raw = await asyncio.wait_for(pipeline.arrived.get(), 10)
            return agent.sessions, raw
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            proxy.server.close()

    sessions, raw = asyncio.run(main())
    assert sessions == 2
    assert message_id(raw) == "<after-cut@example.com>"


def test_wrong_password_keeps_retrying_without_crashing(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    pipeline = StandInPipeline()
    settings = ImapSettings(host="127.0.0.1", port=dovecot.imaps_port, user=box.user,
                            password="not-the-password", tls=True)
    agent = ImapAgent(settings, pipeline.accept, ssl_context=dovecot.ssl_context(),
                      backoff_first=0.05, backoff_cap=0.1)

    async def main():
        # a second attempt after the refusal, however long Dovecot's anvil takes to refuse
        # (a fixed 0.6 s saw only the first on a loaded machine)
        task = asyncio.create_task(agent.run())
        deadline = asyncio.get_running_loop().time() + 15
        while agent.attempts < 2 and not task.done() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        alive = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    assert asyncio.run(main()) is True
    assert agent.sessions == 0
    assert agent.attempts >= 2


def test_an_unreachable_server_is_retried_with_backoff(dovecot):
    from tests.dovecot import free_port
    settings = ImapSettings(host="127.0.0.1", port=free_port(), user="x", password="y", tls=True)
    agent = ImapAgent(settings, StandInPipeline().accept, ssl_context=dovecot.ssl_context(),
                      backoff_first=0.05, backoff_cap=0.1)

    async def main():
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(0.6)
        alive = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    assert asyncio.run(main()) is True
    assert 4 <= agent.attempts <= 12  # 0.05, 0.1, 0.1, ... apart: backoff, not a busy loop


class BusyOncePipeline(StandInPipeline):
    """Its first hand-off fails as if the database were busy; later ones succeed."""
    def __init__(self):
        super().__init__()
        self.failures = 0

    async def accept(self, raw: bytes, transport: str) -> int:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError("database is locked")
        return await super().accept(raw, transport)


def test_a_failed_hand_off_is_retried_without_new_mail_or_a_restart(dovecot):
    box = dovecot.add_user(f"imap{next(_n)}")
    pipeline = BusyOncePipeline()
    agent = agent_for(dovecot, box, pipeline)   # idle_seconds stays at 25 minutes

    async def scenario():
        await wait_until(lambda: agent.idles >= 1)
        await asyncio.to_thread(dovecot.deliver, box, mail("busy-1"))
        journal_id, raw = await asyncio.wait_for(pipeline.arrived.get(), 5)
        agent.mark_seen(journal_id)
        await wait_until(lambda: "S" in dovecot.flags(box)["<busy-1@example.com>"])
        return raw, agent.sessions

    raw, sessions = run_with_agent(agent, scenario)
    assert pipeline.failures == 1 and message_id(raw) == "<busy-1@example.com>"
    assert len(pipeline.accepted) == 1
    assert sessions == 1                        # no reconnect was needed
