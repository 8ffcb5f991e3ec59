"""The webhook reporter against a real HTTP receiver on 127.0.0.1 (and against nothing)."""

from __future__ import annotations

import threading
import time

import pytest

from atk_core import ConfigError, ProgressEvent
from atk_reporter_webhook import WebhookReporter

EVENT_KEYS = {"task_id", "pipeline", "kind", "progress", "message", "time", "usage"}


def event(kind="progress", progress=None, message=None, task_id="demo-1"):
    return ProgressEvent(task_id=task_id, pipeline="demo", kind=kind, progress=progress,
                         message=message, time=time.time())


def progress_events(count):
    return [event("progress", (i + 1) / count, f"step {i + 1} of {count}") for i in range(count)]


def returns(function, *args, hang=30.0) -> bool:
    """Whether ``function(*args)`` returns at all: a hang detector, not a stopwatch.

    Properties such as "never blocks on the receiver" are checked causally (the call
    returns while the receiver still holds a request it has not answered); ``hang`` only
    keeps a broken reporter from hanging the suite.
    """
    thread = threading.Thread(target=function, args=args, daemon=True)
    thread.start()
    thread.join(hang)
    return not thread.is_alive()


def not_answering(url, reason="ConnectionRefusedError"):
    return (f"webhook reporter: {url} is not answering ({reason});"
            " progress events are being dropped")


def summary(dropped, received, url, detail=""):
    return f"webhook reporter: {dropped} of {received} progress events were not delivered to {url}{detail}"


# -- a receiver that works ------------------------------------------------------------------------


def test_every_event_arrives_in_order_with_headers_and_close_flushes_the_rest(receiver, atk_warnings):
    reporter = WebhookReporter(webhook_url=receiver.url, interval=60,
                               headers={"Authorization": "Bearer s3cret-token", "X-Run": "demo"})
    start = event("start", 0.0, "output in out/")
    reporter.handle(start)
    (first,) = receiver.wait_for_posts(1)  # the first event goes out at once
    later = progress_events(20) + [event("finish", 1.0, "done in 0.1s")]
    for e in later:
        reporter.handle(e)
    time.sleep(0.2)
    assert len(receiver.posts) == 1  # the rest wait for the interval...
    reporter.close()  # ...or for close(), which sends them
    posts = receiver.posts
    assert len(posts) == 2
    assert receiver.events() == [e.to_dict() for e in [start, *later]]
    assert receiver.events()[-1]["kind"] == "finish"
    for post in posts:
        assert post["path"] == "/hook"
        assert post["headers"]["Authorization"] == "Bearer s3cret-token"
        assert post["headers"]["X-Run"] == "demo"
        assert post["headers"]["Content-Type"] == "application/json"
        assert set(post["body"]) == {"events"}
        assert all(set(e) == EVENT_KEYS for e in post["body"]["events"])
    assert (reporter.received, reporter.delivered, reporter.dropped) == (22, 22, 0)
    assert atk_warnings() == []


def test_events_are_batched_at_most_one_post_per_interval(receiver):
    reporter = WebhookReporter(url=receiver.url, interval=0.2)
    sent = [event("start", 0.0)] + progress_events(60) + [event("finish", 1.0)]
    for e in sent:
        reporter.handle(e)
        time.sleep(0.01)  # about 0.6 s of events: a few POSTs, far fewer than events
    reporter.close()
    assert receiver.events() == [e.to_dict() for e in sent]
    posts = receiver.posts
    assert 2 <= len(posts) < len(sent) / 2
    gaps = [b["time"] - a["time"] for a, b in zip(posts, posts[1:-1])]  # close() may send early
    assert all(gap >= 0.15 for gap in gaps), gaps


def test_url_is_an_alias_and_a_body_is_utf8_json(receiver):
    reporter = WebhookReporter(url=receiver.url, interval=0)
    reporter.handle(event("progress", 0.5, "naïve café ✓"))
    reporter.close()
    (post,) = receiver.posts
    assert post["body"]["events"][0]["message"] == "naïve café ✓"
    assert post["headers"]["Content-Type"] == "application/json"


def test_close_twice_and_handle_after_close_are_harmless(receiver):
    reporter = WebhookReporter(webhook_url=receiver.url)
    reporter.handle(event("start", 0.0))
    reporter.close()
    reporter.close()
    reporter.handle(event("progress", 0.5))
    assert len(receiver.events()) == 1


def test_a_full_queue_drops_the_oldest_and_says_so_once(receiver, atk_warnings):
    reporter = WebhookReporter(webhook_url=receiver.url, interval=60, max_queue=10)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)
    waiting = progress_events(50)
    for e in waiting:
        reporter.handle(e)
    reporter.close()
    assert receiver.events()[1:] == [e.to_dict() for e in waiting[-10:]]
    assert atk_warnings() == [
        f"webhook reporter: more than 10 progress events are waiting for {receiver.url};"
        " the oldest are being dropped",
        summary(40, 51, receiver.url, " (40 of them because more than max_queue=10 were waiting)"),
    ]


def test_a_receiver_that_recovers_gets_later_events(make_receiver, atk_warnings):
    receiver = make_receiver(statuses=[503])
    reporter = WebhookReporter(webhook_url=receiver.url, interval=0.05, retries=0)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)  # answered 503: that batch is dropped
    time.sleep(0.1)
    reporter.handle(event("progress", 0.5))
    receiver.wait_for_posts(2)
    reporter.handle(event("finish", 1.0))
    reporter.close()
    kinds = [[e["kind"] for e in post["body"]["events"]] for post in receiver.posts]
    assert kinds == [["start"], ["progress"], ["finish"]]
    assert (reporter.delivered, reporter.dropped) == (2, 1)
    assert atk_warnings() == [
        f"webhook reporter: {receiver.url} answered HTTP 503; progress events are being dropped",
        summary(1, 3, receiver.url),
    ]


# -- a receiver that is down, slow or failing -----------------------------------------------------


def test_receiver_down_never_blocks_warns_once_and_sums_up(dead_url, atk_warnings):
    reporter = WebhookReporter(webhook_url=dead_url, interval=0.05, close_timeout=2.0)
    reporter.handle(event("start", 0.0))
    many = progress_events(1000)
    assert returns(lambda: [reporter.handle(e) for e in many])
    time.sleep(0.3)  # let the sender fail a few times
    reporter.handle(event("finish", 1.0))
    assert returns(reporter.close)
    assert reporter.dropped == reporter.received == 1002
    assert atk_warnings() == [not_answering(dead_url), summary(1002, 1002, dead_url)]


def test_slow_receiver_never_blocks_and_close_is_bounded(make_receiver, atk_warnings):
    # The receiver reads the first POST and does not answer until released; the reporter
    # would wait 60 s for it. Handling events and closing both return while it still holds it.
    receiver = make_receiver(hold=True)
    reporter = WebhookReporter(webhook_url=receiver.url, timeout=60, retries=1,
                               close_timeout=0.5)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)  # the sender is now waiting for an answer
    many = progress_events(1000) + [event("finish", 1.0)]
    assert returns(lambda: [reporter.handle(e) for e in many])
    assert receiver.holding == 1
    assert returns(reporter.close)
    assert receiver.holding == 1  # close() gave up on the POST still waiting
    assert len(receiver.posts) == 1
    assert reporter.delivered == 0
    assert atk_warnings() == [summary(1002, 1002, receiver.url)]


def test_a_receiver_that_does_not_answer_in_time_is_named(make_receiver, atk_warnings):
    receiver = make_receiver(hold=True)
    reporter = WebhookReporter(webhook_url=receiver.url, timeout=0.3, retries=0)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)
    message = (f"webhook reporter: {receiver.url} did not answer within 0.3s;"
               " progress events are being dropped")
    deadline = time.monotonic() + 30
    while not atk_warnings() and time.monotonic() < deadline:
        time.sleep(0.02)
    reporter.close()
    assert atk_warnings() == [message, summary(1, 1, receiver.url)]
    assert reporter.dropped == 1


def test_a_receiver_answering_500_is_retried_then_dropped(make_receiver, atk_warnings):
    receiver = make_receiver(status=500)
    reporter = WebhookReporter(webhook_url=receiver.url, interval=30, retries=2,
                               close_timeout=2.0)
    reporter.handle(event("start", 0.0))
    first = receiver.wait_for_posts(3)  # one try and two retries of the same batch
    assert first[0]["raw"] == first[1]["raw"] == first[2]["raw"]
    many = progress_events(1000) + [event("finish", 1.0)]
    assert returns(lambda: [reporter.handle(e) for e in many])
    assert returns(reporter.close)
    # While the receiver keeps failing, later batches get one try each.
    assert len(receiver.posts) == 4
    assert [e["kind"] for e in receiver.posts[3]["body"]["events"]][-1] == "finish"
    assert atk_warnings() == [
        f"webhook reporter: {receiver.url} answered HTTP 500; progress events are being dropped",
        summary(1002, 1002, receiver.url),
    ]


def test_a_client_error_is_not_retried(make_receiver, atk_warnings):
    receiver = make_receiver(status=404)
    reporter = WebhookReporter(webhook_url=receiver.url, retries=3)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)
    reporter.close()
    assert len(receiver.posts) == 1
    assert atk_warnings()[0].endswith("answered HTTP 404; progress events are being dropped")


def test_redirects_are_not_followed_so_headers_stay_with_the_configured_address(
        make_receiver, atk_warnings):
    elsewhere = make_receiver()
    redirecting = make_receiver(status=307, headers={"Location": elsewhere.url})
    reporter = WebhookReporter(webhook_url=redirecting.url, headers={"Authorization": "Bearer x"})
    reporter.handle(event("start", 0.0))
    redirecting.wait_for_posts(1)
    reporter.close()
    assert elsewhere.posts == []
    assert atk_warnings()[0] == (
        f"webhook reporter: {redirecting.url} answered HTTP 307, a redirect (redirects are not"
        " followed; give the final address); progress events are being dropped"
    )


def test_close_timeout_zero_returns_at_once(make_receiver, atk_warnings):
    receiver = make_receiver(hold=True)
    reporter = WebhookReporter(webhook_url=receiver.url, timeout=60, close_timeout=0)
    reporter.handle(event("start", 0.0))
    receiver.wait_for_posts(1)
    reporter.handle(event("finish", 1.0))
    assert returns(reporter.close)
    assert receiver.holding == 1 and len(receiver.posts) == 1
    assert atk_warnings() == [summary(2, 2, receiver.url)]


def test_messages_never_show_credentials_or_query_of_the_url(dead_url, atk_warnings):
    secret_url = dead_url.replace("http://", "http://user:pa55word@") + "?token=abc123"
    reporter = WebhookReporter(webhook_url=secret_url, headers={"Authorization": "Bearer zz9"})
    reporter.handle(event("start", 0.0))
    reporter.close()
    text = "\n".join(atk_warnings())
    assert dead_url in text
    for secret in ("pa55word", "user", "abc123", "token", "zz9"):
        assert secret not in text


def test_user_and_password_in_the_url_become_basic_auth(receiver):
    reporter = WebhookReporter(
        webhook_url=receiver.url.replace("http://", "http://hook%20user:pa55@") + "?run=7")
    reporter.handle(event("start", 0.0))
    reporter.close()
    (post,) = receiver.posts
    assert post["path"] == "/hook?run=7"
    assert post["headers"]["Authorization"] == "Basic aG9vayB1c2VyOnBhNTU="  # "hook user:pa55"


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({}, "the webhook reporter needs webhook_url: the http:// or https:// URL to POST progress"
         " events to"),
    ({"webhook_url": ""}, "the webhook reporter needs webhook_url"),
    ({"webhook_url": "http://a/h", "url": "http://b/h"},
     "the webhook reporter takes webhook_url or its alias url, not both"),
    ({"url": "ftp://example.org/hook"},
     "webhook_url must start with http:// or https://, not ftp:"),
    ({"url": "example.org/hook"}, "webhook_url must start with http:// or https://, not no scheme"),
    ({"url": "http:///hook"}, "webhook_url has no host name"),
    ({"url": "http://example.org:port/hook"}, "webhook_url is not a valid URL"),
    ({"url": 42}, "webhook_url must be a URL (text), not int"),
    ({"url": "http://x/h", "headers": ["Authorization: Bearer s3cret"]},
     "webhook headers must be a mapping of header names to values, not list"),
    ({"url": "http://x/h", "headers": {"Authorization": "Bearer s3cret\r\nX-Evil: 1"}},
     "webhook header 'Authorization' must not contain line breaks"),
    ({"url": "http://x/h", "headers": {"Bad Name": "v"}},
     "webhook header name 'Bad Name' is not a valid HTTP header name"),
    ({"url": "http://x/h", "headers": {"X-Token": {"nested": "s3cret"}}},
     "webhook header 'X-Token' must be text, not dict"),
    ({"url": "http://x/h", "interval": "often"},
     "interval must be a number of seconds, at least 0, not 'often'"),
    ({"url": "http://x/h", "interval": float("inf")},
     "interval must be a number of seconds, at least 0, not inf"),
    ({"url": "http://x/h", "timeout": 0}, "timeout must be a number of seconds, above 0, not 0"),
    ({"url": "http://x/h", "close_timeout": -1},
     "close_timeout must be a number of seconds, at least 0, not -1"),
    ({"url": "http://x/h", "retries": 1.5}, "retries must be a whole number of at least 0, not 1.5"),
    ({"url": "http://x/h", "max_queue": 0}, "max_queue must be a whole number of at least 1, not 0"),
])
def test_bad_options_are_one_clear_line_without_secrets(options, message):
    with pytest.raises((ValueError, ConfigError)) as raised:
        WebhookReporter(**options)
    text = str(raised.value)
    assert text.startswith(message)
    assert "\n" not in text and "s3cret" not in text


def test_output_dir_is_accepted_and_numbers_may_be_integers(receiver):
    reporter = WebhookReporter(webhook_url=receiver.url, output_dir="/tmp/out", interval=0,
                               timeout=1, close_timeout=1, headers={"X-Attempt": 3})
    reporter.handle(event("start", 0.0))
    reporter.close()
    assert receiver.posts[0]["headers"]["X-Attempt"] == "3"
