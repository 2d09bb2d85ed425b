"""Realistic Telegram updates for the demo: messages from a few dozen people across a few chats,
channel posts, edits, and people joining and leaving (a `new_chat_members` or `left_chat_member`
service message together with the `chat_member` update Telegram sends beside it)."""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, NamedTuple

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Radia",
    "Guido",
    "Frances",
    "Tim",
    "Katherine",
    "Donald",
    "Hedy",
    "Edsger",
    "Sophie",
    "Yukihiro",
    "Jean",
    "Bjarne",
    "Anita",
    "John",
    "Mary",
    "Niklaus",
    "Adele",
    "Leslie",
    "Joan",
    "Brian",
    "Carol",
    "Vint",
    "Lynn",
    "Whitfield",
    "Evelyn",
    "Rasmus",
    "Shafi",
    "Ward",
    "Elena",
    "Rob",
    "Ida",
    "Jim",
)

PHRASES = (
    "Good morning everyone!",
    "Has anyone tried the new release?",
    "Thanks, that fixed it 🙌",
    "Meeting at 3?",
    "Here's the link to the doc",
    "Can someone review my PR?",
    "I'll take a look after lunch",
    "+1",
    "Agreed, let's ship it",
    "What time zone are we using?",
    "Photos from Saturday are up",
    "Great idea!",
    "Is the trail open this weekend?",
    "Any recommendations for a good keyboard?",
    "brb",
    "lol 😄",
    "Welcome aboard!",
    "Can we move this to Thursday?",
    "Done ✅",
    "Looks good to me",
    "Who's in?",
    "The build is green again",
    "Coffee first ☕",
    "Let me check and get back to you",
)


@dataclass(frozen=True)
class DemoChat:
    id: int
    kind: str  # "supergroup", "group" or "channel"
    title: str
    weight: int  # how busy it is, relative to the others


CHATS = (
    DemoChat(-1001987650001, "supergroup", "Plugboard Community", 6),
    DemoChat(-1001987650002, "supergroup", "Product Team", 4),
    DemoChat(-1001987650003, "supergroup", "Weekend Hikers", 2),
    DemoChat(-4019876504, "group", "Book Club", 1),
    DemoChat(-1001987650005, "channel", "Release Notes", 1),
)

CHAT_BY_ID = {chat.id: chat for chat in CHATS}
# Members who never post (and a channel's subscribers): Telegram's member count holds them too,
# beside the people who talk and the bot itself.
SILENT_MEMBERS = {
    -1001987650001: 212,
    -1001987650002: 3,
    -1001987650003: 41,
    -4019876504: 2,
    -1001987650005: 1_180,
}


class Thing(NamedTuple):
    kind: str  # "message", "channel post", "edit", "join" or "leave"
    chat: DemoChat
    person: dict[str, Any] | None = None  # who posts, joins or leaves
    original: dict[str, Any] | None = None  # the message an edit changes


class Traffic:
    """Makes updates in order; `counts` says what it made so far (messages, posts, edits, joins, leaves).
    When things happen is the pace's business (pace.py): this says what happens."""

    def __init__(self, rng: random.Random, people: int = 36) -> None:
        self.rng = rng
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        self.people: list[dict[str, Any]] = [
            {"id": 6_100_000 + i, "is_bot": False, "first_name": FIRST_NAMES[i % len(FIRST_NAMES)]}
            for i in range(people)
        ]
        self.by_id = {person["id"]: person for person in self.people}
        self.groups = [chat for chat in CHATS if chat.kind != "channel"]
        self.channels = [chat for chat in CHATS if chat.kind == "channel"]
        # Everyone starts in one to three groups, so there is always someone left to join.
        self.members: dict[int, set[int]] = {chat.id: set() for chat in self.groups}
        for person in self.people:
            for chat in rng.sample(self.groups, rng.randint(1, 3)):
                self.members[chat.id].add(person["id"])
        self.group_weights = list(itertools.accumulate(chat.weight for chat in self.groups))
        self.recent: deque[dict[str, Any]] = deque(maxlen=21)  # recent messages, for edits
        self.counts: Counter[str] = Counter()

    # --- one moment of activity ------------------------------------------------------------

    def member_count(self, chat_id: int) -> int | None:
        """The chat's member count as Telegram tells it (getChatMemberCount): None for a chat the
        community does not have."""
        if chat_id not in CHAT_BY_ID:
            return None
        talking = len(self.members.get(chat_id, ()))
        return SILENT_MEMBERS.get(chat_id, 0) + talking + 1  # + the bot

    def next_thing(self) -> Thing:
        """What happens next (who joins or leaves which chat changes who is in it); no update yet."""
        return self._counted(self._choose())

    def newcomer(self) -> Thing:
        """Someone joins a group now: how the live traffic opens, so that Welcome's greeting and the
        counts move within seconds of the start at any hour, even at night's slow pace."""
        return self._counted(self.join())

    def _counted(self, thing: Thing) -> Thing:
        self.counts[thing.kind + "s"] += 1
        return thing

    def _choose(self) -> Thing:
        roll = self.rng.random()
        if roll < 0.04:
            return self.join()
        if roll < 0.065:
            return self.leave()
        if roll < 0.10 and self.channels:
            return Thing("channel post", self.rng.choice(self.channels))
        if roll < 0.12 and self.recent:
            original = self.rng.choice(self.recent)
            return Thing("edit", CHAT_BY_ID[original["chat"]["id"]], original=original)
        return self.message()

    def next_updates(self, at: int) -> list[dict[str, Any]]:
        """The updates of the next thing, happening at Unix time `at` (one or two updates)."""
        return self.updates(self.next_thing(), at)

    def updates(self, thing: Thing, at: int) -> list[dict[str, Any]]:
        """The updates Telegram sends for `thing` at Unix time `at`."""
        chat, person = thing.chat, thing.person
        if thing.kind == "message":
            message = self._message(chat, at, **{"from": person, "text": self.rng.choice(PHRASES)})
            self.recent.append(message)
            return [self._update("message", message)]
        if thing.kind == "channel post":
            text = f"Release {self.rng.randint(1, 9)}.{self.rng.randint(0, 30)} is out: {self.rng.choice(PHRASES)}"
            return [self._update("channel_post", self._message(chat, at, sender_chat=self._chat(chat), text=text))]
        if thing.kind == "edit":
            original = thing.original or {}
            return [
                self._update(
                    "edited_message",
                    {**original, "edit_date": max(at, original["date"]), "text": original["text"] + " (edited)"},
                )
            ]
        assert person is not None  # a join or a leave names who
        if thing.kind == "join":
            return [
                self._update("message", self._message(chat, at, **{"from": person, "new_chat_members": [person]})),
                self._member_change(chat, person, at, "left", "member"),
            ]
        return [  # a leave
            self._member_change(chat, person, at, "member", "left"),
            self._update("message", self._message(chat, at, **{"from": person, "left_chat_member": person})),
        ]

    # --- kinds of thing ----------------------------------------------------------------------

    def message(self) -> Thing:
        chat = self.busy_group()
        if not self.members[chat.id]:
            self.members[chat.id].add(self.rng.choice(self.people)["id"])
        return Thing("message", chat, self.person(self.rng.choice(tuple(self.members[chat.id]))))

    def join(self) -> Thing:
        chat = self.rng.choice(self.groups)
        outside = [p["id"] for p in self.people if p["id"] not in self.members[chat.id]]
        if not outside:
            return self.message()
        person = self.person(self.rng.choice(outside))
        self.members[chat.id].add(person["id"])
        return Thing("join", chat, person)

    def leave(self) -> Thing:
        chat = self.rng.choice(self.groups)
        if len(self.members[chat.id]) <= 3:
            return self.message()
        person = self.person(self.rng.choice(sorted(self.members[chat.id])))
        self.members[chat.id].discard(person["id"])
        return Thing("leave", chat, person)

    def message_update(self, at: int) -> dict[str, Any]:
        """A message in a busy group at `at` (uncounted)."""
        return self.updates(self.message(), at)[0]

    # --- shapes ------------------------------------------------------------------------------

    def busy_group(self) -> DemoChat:
        return self.groups[bisect.bisect(self.group_weights, self.rng.random() * self.group_weights[-1])]

    def person(self, person_id: int) -> dict[str, Any]:
        return self.by_id[person_id]

    def _chat(self, chat: DemoChat) -> dict[str, Any]:
        return {"id": chat.id, "type": chat.kind, "title": chat.title}

    def _message(self, chat: DemoChat, at: int, **fields: Any) -> dict[str, Any]:
        return {"message_id": next(self.message_ids), "date": at, "chat": self._chat(chat), **fields}

    def _member_change(self, chat: DemoChat, person: dict[str, Any], at: int, old: str, new: str) -> dict[str, Any]:
        return self._update(
            "chat_member",
            {
                "chat": self._chat(chat),
                "from": person,
                "date": at,
                "old_chat_member": {"status": old, "user": person},
                "new_chat_member": {"status": new, "user": person},
            },
        )

    def _update(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self.update_ids), kind: body}


def chat_titles() -> dict[int, tuple[str, str]]:
    return {chat.id: (chat.kind, chat.title) for chat in CHATS}
