"""chanx's SDK span: attributes and events chanx built are stored as given.

:class:`ChanxSpan` is an SDK ``Span`` started by
:func:`chanx.telemetry.fast_spans.sdk_starter` (which checks that this
module's assumptions about the SDK hold). Its own attributes stay a plain
dict and its events are built directly (the first one as a compact tuple
until something reads the span's events); whatever user code adds goes
through the SDK's validation and limits. Processors get the span itself
when it ends.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, EventBase, SynchronousMultiSpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from chanx.telemetry.shared_attributes import (
    PLAIN_ATTRIBUTES,
    SharedAndOne,
    SharedAttributes,
)

__all__ = ["CLASS_FIELDS", "FEW_EVENTS", "UNSET_STATUS", "ChanxSpan", "CompactEvent"]

_log = logging.getLogger(__name__)

#: The status every chanx span starts with (shared: statuses are immutable).
UNSET_STATUS = Status(StatusCode.UNSET)

#: The SDK span's fields that ChanxSpan keeps on the class until a span
#: sets its own (the lock is shared by all; ``_events`` is a property).
CLASS_FIELDS = frozenset(
    (
        "_lock",
        "_end_time",
        "_status",
        "_trace_config",
        "_record_exception",
        "_set_status_on_exception",
        "_events",
    )
)

#: A span's first event, before anything asks for its ``Event``: name,
#: timestamp, then its attributes as a shared set and one more key and value
#: (see :meth:`ChanxSpan.add_extended_event`).
CompactEvent = tuple[str, int, SharedAttributes, str, AttributeValue]

#: Events a span's list takes before the limits are checked (sdk_starter
#: only starts chanx spans under limits that allow at least these): a
#: ``receive`` span's usual one, its frame sent back.
FEW_EVENTS = 1


class ChanxSpan(sdk_trace.Span):
    """An SDK span started by chanx; chanx's own attributes skip re-validation.

    Attributes stay a plain ``dict`` while only chanx writes them, and are
    never written in place (spans may share the dict they start with: chanx
    gives every ``process`` span of a consumer and action the same one);
    the first ``set_attribute``/``set_attributes`` turns them into the SDK's
    ``BoundedAttributes``. ``add_event``, ``record_exception`` and
    ``add_link`` validate as the SDK does, and events and links are kept
    under the span limits, so user code sees the SDK's behaviour.
    Processors get the span itself when it ends (it refuses changes then).
    """

    # One reentrant lock for all of chanx's spans instead of a lock per span:
    # every span allocated one, a container the garbage collector then
    # tracked until the span was exported. Nothing holding a span's lock
    # takes another span's (the SDK only updates that span's own fields), so
    # sharing it costs at most a short wait between threads.
    _lock = threading.RLock()  # type: ignore[assignment]  # the SDK's is a Lock

    # What every span starts with, read from the class until a span sets its
    # own: a store less each per span started.
    _end_time: int | None = None
    _status = UNSET_STATUS
    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True
    # The provider's processors tuple, set by the starter when all their
    # on_start and _on_ending are the SDK's no-ops (see _QuietProcessors).
    _quiet: object = None
    # The events list, made when first asked for (see _events), and the
    # first event until then: a receive span usually gets one event, its
    # frame sent back, and an Event with its attributes and the list are
    # three container objects held while the handler runs.
    _event_list: Any = None
    _compact_event: CompactEvent | None = None

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        tracer: sdk_trace.Tracer,
        kind: SpanKind,
        attributes: dict[str, AttributeValue] | BoundedAttributes,
        links: Sequence[Link],
        record_end_metrics: Callable[[], None] | None,
    ) -> None:
        # Deliberately no super().__init__(): it is what this class avoids.
        # ``sdk_starter`` checks that these and CLASS_FIELDS are all the
        # fields the SDK sets.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = time_ns()
        self._attributes: Any = attributes
        self._links: Any = links
        self._resource = tracer.resource
        self._sampler = tracer.sampler
        self._span_processor = tracer.span_processor
        self._limits = tracer._span_limits
        # No lock of its own: see _lock above.
        self._record_end_metrics = record_end_metrics

    def add_trusted_event(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue],
        timestamp: int | None = None,
    ) -> None:
        """Add an event whose attributes chanx built (valid, under the limits)."""
        event = _new_event(name, attributes, timestamp or time_ns())
        with self._lock:
            if self._end_time is None:
                events = self._events
                # _append_event() without its call, while the list has room.
                if events.__class__ is list and len(events) < FEW_EVENTS:
                    events.append(event)
                else:
                    self._append_event(event)

    def add_extended_event(
        self, name: str, shared: SharedAttributes, key: str, value: AttributeValue
    ) -> None:
        """Add an event whose attributes are ``shared`` then ``key``: ``value``
        (chanx built them: valid, under the limits, ``key`` not in ``shared``).

        The span's first event is kept as a :data:`CompactEvent` until
        something reads the span's events; chanx's encoder reads it as it is.
        """
        timestamp = time_ns()
        with self._lock:
            if self._end_time is not None:
                return
            if self._event_list is None and self._compact_event is None:
                self._compact_event = (name, timestamp, shared, key, value)
                return
        self.add_trusted_event(name, SharedAndOne(shared, key, value), timestamp)

    @property
    def _events(self) -> Any:
        # What the SDK's own code reads and appends to: made on first use,
        # with the compact first event as an Event in it.
        events = self._event_list
        if events is None:
            with self._lock:
                events = self._event_list
                if events is None:
                    compact = self._compact_event
                    events = [] if compact is None else [_event_of(compact)]
                    # The list first: a reader finding no compact event
                    # finds the list holding it.
                    self._event_list = events
                    self._compact_event = None
        return events

    @_events.setter
    def _events(self, events: Any) -> None:
        self._event_list = events

    def set_trusted_attribute(self, key: str, value: AttributeValue) -> None:
        """Set an attribute chanx built (a valid key and value)."""
        with self._lock:
            if self._end_time is None:
                attributes = self._attributes
                if type(attributes) in PLAIN_ATTRIBUTES:
                    # Spans may share the dict they started with: copy it.
                    self._attributes = {**attributes, key: value}
                else:
                    attributes[key] = value

    def set_attribute(self, key: str, value: Any) -> None:
        self._bound_attributes()
        super().set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._bound_attributes()
        super().set_attributes(attributes)

    def _add_event(self, event: EventBase) -> None:
        # The SDK's add_event() and record_exception() end here.
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                self._append_event(event)
        if ended:
            _log.warning("Tried calling _add_event on an ended span.")

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        with self._lock:
            if not isinstance(self._links, BoundedList):
                self._links = BoundedList.from_seq(self._limits.max_links, self._links)
        super().add_link(context, attributes)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            attributes = self._attributes
            # type() first: BoundedAttributes is an ABC, slow to isinstance.
            if type(attributes) not in PLAIN_ATTRIBUTES and isinstance(
                attributes, BoundedAttributes
            ):
                attributes._immutable = True
        if self._record_end_metrics is not None:
            self._record_end_metrics()
        # The SDK hands processors a copy sharing these same containers;
        # the span itself is that view (it refuses changes once ended).
        multi = self._span_processor
        if multi.__class__ is not SynchronousMultiSpanProcessor:
            multi._on_ending(self)
            multi.on_end(self)
            return
        # The tuple as the multi-processor would read it now: a processor
        # added since the start sees the end. The two calls through it are
        # skipped when they would do nothing.
        processors = multi._span_processors
        if processors is not self._quiet:
            multi._on_ending(self)
        if len(processors) == 1:
            processors[0].on_end(self)
        else:
            multi.on_end(self)

    def _append_event(self, event: EventBase) -> None:
        events = self._events
        limit = self._limits.max_events
        if type(events) is list and limit is not None and len(events) >= limit:
            events = self._events = BoundedList.from_seq(limit, events)
        events.append(event)

    def _bound_attributes(self) -> None:
        with self._lock:
            if self._end_time is None and type(self._attributes) in PLAIN_ATTRIBUTES:
                limits = self._limits
                self._attributes = BoundedAttributes(
                    limits.max_span_attributes,
                    self._attributes,
                    immutable=False,
                    max_value_len=limits.max_span_attribute_length,
                )


def _renew_lock() -> None:
    # A child forked while another thread held the shared lock would find it
    # held for good: every span of the child would hang on its first write.
    ChanxSpan._lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_renew_lock)


def _event_fields() -> bool:
    """Whether an SDK ``Event`` holds exactly a name, timestamp and attributes."""
    event = Event("probe", {"key": 1}, timestamp=7)
    fields = vars(event)
    return fields == {"_name": "probe", "_timestamp": 7, "_attributes": {"key": 1}}


_new_object = object.__new__


def _new_event(name: str, attributes: Any, timestamp: int) -> Event:
    if not _DIRECT_EVENTS:
        return Event(name, attributes, timestamp)
    # Event(name, attributes, timestamp) without its two __init__ calls.
    event: Event = _new_object(Event)
    event._name = name
    event._timestamp = timestamp
    event._attributes = attributes
    return event


def _event_of(compact: CompactEvent) -> Event:
    name, timestamp, shared, key, value = compact
    return _new_event(name, SharedAndOne(shared, key, value), timestamp)


#: Whether ``Event(name, attributes)`` may be built field by field.
_DIRECT_EVENTS = _event_fields()
