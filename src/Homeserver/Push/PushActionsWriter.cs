using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Evaluates every accepted event against the push rules of the room's local members (not its sender) and records, in
/// the event's own transaction, the events that notify them: the source of unread counts and notifications. Nothing
/// from a user the recipient ignores notifies.
/// </summary>
public sealed class PushActionsWriter(
    PushRuleService rules, PushActionStore actions, EventCache events, AccountData.IgnoredUsers ignoredUsers, HomeserverConfig config)
    : IEventListener
{
    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        var joined = roomAfter.JoinedMembers;
        var suffix = ":" + config.ServerName;
        var recipients = joined.Where(u => u.EndsWith(suffix, StringComparison.Ordinal) && u != pdu.Sender).ToList();
        if (recipients.Count == 0)
            return;
        var powers = new RoomPowers((await StateEventAsync(session, pdu, roomAfter, StateKey.Create))!,
            await StateEventAsync(session, pdu, roomAfter, StateKey.PowerLevels));
        var senderLevel = powers.UserLevel(pdu.Sender);
        var threadId = ThreadOf(pdu.Json);
        var notified = new List<PushActionRow>();
        var ev = new PushEventView(pdu.Json);
        foreach (var userId in recipients)
        {
            if ((await ignoredUsers.OfAsync(session, userId)).Contains(pdu.Sender))
                continue;
            var ruleset = await rules.RulesetAsync(session, userId);
            var displayName = ruleset.UsesDisplayName ? await DisplayNameAsync(session, pdu, roomAfter, userId) : null;
            var context = new PushContext(joined.Count, displayName, senderLevel, powers.Levels.Notifications);
            if (ruleset.Evaluate(ev, context) is not { Notify: true } outcome)
                continue;
            notified.Add(new PushActionRow
            {
                UserId = userId, EventId = pdu.EventId, RoomId = pdu.RoomId, StreamOrdering = streamOrdering, ThreadId = threadId,
                Highlight = outcome.Highlight ? 1 : 0, Actions = outcome.ActionsJson, Ts = pdu.OriginServerTs,
            });
        }
        await actions.InsertAsync(session, notified);
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }

    /// <summary>The thread an event belongs to (its root's ID), or the main timeline.</summary>
    public static string ThreadOf(JsonObject ev) =>
        ev["content"]?["m.relates_to"] is JsonObject relation && relation["rel_type"]?.GetValue<string>() == "m.thread"
            && relation["event_id"] is JsonValue root && root.TryGetValue<string>(out var rootId)
            ? rootId
            : PushActionStore.MainThread;

    // Everything is read through the event's own session: see EventCache.GetAsync(DbSession, ...).
    private async Task<Pdu?> StateEventAsync(DbSession session, Pdu current, RoomSnapshot room, StateKey key) =>
        room.StateEventId(key) is not { } eventId ? null
        : eventId == current.EventId ? current
        : await events.GetAsync(session, eventId, room.Version);

    private async Task<string?> DisplayNameAsync(DbSession session, Pdu current, RoomSnapshot room, string userId) =>
        (await StateEventAsync(session, current, room, new StateKey("m.room.member", userId)))?.Content["displayname"] is JsonValue name
            && name.TryGetValue<string>(out var text) ? text : null;
}
