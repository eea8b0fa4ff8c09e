"""A consumer of clockworks fired events, written the way an application would write one.

It binds a queue to the fired-events exchange with "<namespace>.#", prints one line per
event, drops duplicates by message_id and acknowledges each delivery only after it was
handled, so an event that was being handled when the consumer died is delivered again.

Duplicates: clockworks delivers at least once, and a repeated fire carries the same
message_id. This consumer remembers the last RECENT_IDS ids in memory (a bounded window,
oldest forgotten first), which catches redeliveries that arrive close together. The window
is lost when the process restarts; an application whose effects must happen once records
the message_id in its own database, in the same transaction as the effect.

Needs pika (pip install pika). Usage:

    python consumer.py --namespace demo
    python consumer.py --namespace demo --queue demo-reminders
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

import pika

# Message ids remembered to drop duplicates.
RECENT_IDS = 10_000
# Deliveries the broker sends ahead of acknowledgements.
PREFETCH = 100


class RecentIds:
    """The last `capacity` message ids seen, to tell a first delivery from a repeat."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.ids = OrderedDict()

    def first_time(self, message_id):
        """Whether the id is new to the window; a new id is remembered, the oldest forgotten."""
        if message_id in self.ids:
            return False
        if len(self.ids) == self.capacity:
            self.ids.popitem(last=False)
        self.ids[message_id] = None
        return True


def parse_args():
    parser = argparse.ArgumentParser(
        description="Print the fired events of one namespace, each once."
    )
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        help="RabbitMQ connection URL (env AMQP_URL)",
    )
    parser.add_argument(
        "--exchange",
        default=os.environ.get("CLOCKWORKS_EXCHANGE", "clockworks.fired"),
        help="the topic exchange clockworks publishes to (env CLOCKWORKS_EXCHANGE)",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("CLOCKWORKS_NAMESPACE"),
        required="CLOCKWORKS_NAMESPACE" not in os.environ,
        help="the namespace whose events to consume (env CLOCKWORKS_NAMESPACE)",
    )
    parser.add_argument(
        "--queue",
        help="a durable quorum queue of this name, which keeps events while the consumer is "
        "away; without it, an exclusive queue lives as long as the consumer",
    )
    return parser.parse_args()


def declare_queue(channel, name):
    """A named queue is a durable quorum queue (replicated across a RabbitMQ cluster);
    without a name, the broker names an exclusive queue deleted with the connection."""
    if name:
        result = channel.queue_declare(
            queue=name, durable=True, arguments={"x-queue-type": "quorum"}
        )
    else:
        result = channel.queue_declare(queue="", exclusive=True, auto_delete=True)
    return result.method.queue


def handle(routing_key, message_id, body):
    """What the application does with an event; here, one line on standard output."""
    try:
        event = json.loads(body)
        payload = json.dumps(event["payload"], separators=(",", ":"))
        line = (
            f"{routing_key} {event['timer_id']} fire_seq={event['fire_seq']} "
            f"message_id={message_id} payload={payload}"
        )
    except (ValueError, KeyError, TypeError):
        line = f"{routing_key} (not a fired event) message_id={message_id}"
    print(line, flush=True)


def main():
    args = parse_args()
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)

    queue = declare_queue(channel, args.queue)
    binding = f"{args.namespace}.#"
    channel.queue_bind(queue=queue, exchange=args.exchange, routing_key=binding)

    recent = RecentIds(RECENT_IDS)

    def on_message(channel, method, properties, body):
        message_id = properties.message_id
        if message_id is not None and not recent.first_time(message_id):
            print(f"duplicate {message_id} dropped", file=sys.stderr, flush=True)
        else:
            handle(method.routing_key, message_id or "-", body)
        # Acknowledged only now: had the process died while handling, the broker would
        # deliver the event again.
        channel.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_consume(queue=queue, on_message_callback=on_message)
    print(
        f"consuming from queue {queue} bound to {args.exchange} with {binding}",
        file=sys.stderr,
        flush=True,
    )
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    connection.close()


if __name__ == "__main__":
    main()
