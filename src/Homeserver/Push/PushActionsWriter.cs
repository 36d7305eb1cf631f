using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Evaluates every accepted event against the push rules of the room's local members (not its sender), and an invite
/// against its local invitee's, and records, in the event's own transaction, the events that notify them: the source
/// of unread counts and notifications. Nothing from a user the recipient ignores notifies.
/// </summary>
public sealed class PushActionsWriter(
    PushRuleService rules, PushActionStore actions, EventCache events, AccountData.IgnoredUsers ignoredUsers, HomeserverConfig config)
    : IEventListener
{
    private static readonly IReadOnlyDictionary<string, long> NoLevels = new Dictionary<string, long>();

    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        var joined = roomAfter.JoinedMembers;
        var recipients = new List<string>(joined.Count);
        foreach (var user in joined)
            if (EventSigning.IsOf(user, config.ServerName) && user != pdu.Sender)
                recipients.Add(user);
        // The invitee is not joined, yet .m.rule.invite_for_me is theirs to match (Synapse adds them the same way).
        var invitee = pdu.Membership == "invite" && pdu.StateKey is { } target && EventSigning.IsOf(target, config.ServerName)
            && target != pdu.Sender ? target : null;
        if (invitee is not null)
            recipients.Add(invitee);
        if (recipients.Count == 0)
            return;
        // Read together, not per recipient: the first message into a room after a start-up finds none of them in memory.
        var ignoredLists = await ignoredUsers.OfUsersAsync(session, recipients);
        var rulesets = await rules.RulesetsAsync(session, recipients);
        var named = recipients.Where(u => rulesets[u].UsesDisplayName && !ignoredLists[u].Contains(pdu.Sender)).ToList();
        var state = await StateEventsAsync(session, pdu, roomAfter, [StateKey.Create, StateKey.PowerLevels, .. named.Select(StateKey.Member)]);
        var powers = new RoomPowers(state[StateKey.Create], state.GetValueOrDefault(StateKey.PowerLevels));
        var senderLevel = powers.UserLevel(pdu.Sender);
        var threadId = ThreadOf(pdu.Json);
        var notified = new List<PushActionRow>(recipients.Count);
        var invited = new List<PushActionRow>();
        var ev = new PushEventView(pdu.Json);
        var displayNames = named.ToDictionary(u => u, u => state.GetValueOrDefault(StateKey.Member(u))?.Content["displayname"] is JsonValue name
            && name.TryGetValue<string>(out var text) ? text : null, StringComparer.Ordinal);
        foreach (var userId in recipients)
        {
            if (ignoredLists[userId].Contains(pdu.Sender))
                continue;
            var context = new PushContext(joined.Count, displayNames.GetValueOrDefault(userId), senderLevel, powers.Levels.Notifications);
            if (rulesets[userId].Evaluate(ev, context) is { Notify: true } outcome)
                (userId == invitee ? invited : notified).Add(Row(userId, pdu, streamOrdering, threadId, outcome));
        }
        await actions.InsertAsync(session, notified);
        await actions.InsertAsync(session, invited, unread: false);
    }

    /// <summary>
    /// An invite from a room this server is not in (federation's <c>/invite</c>, stored at <paramref name="streamOrdering"/>):
    /// only the invitee's rules, with no room state to go by (no joined members, no power levels).
    /// </summary>
    public async Task OnRemoteInviteAsync(DbSession session, Pdu invite, string invitee, long streamOrdering)
    {
        if ((await ignoredUsers.OfAsync(session, invitee)).Contains(invite.Sender))
            return;
        var displayName = invite.Content["displayname"] is JsonValue name && name.TryGetValue<string>(out var text) ? text : null;
        var outcome = (await rules.RulesetAsync(session, invitee)).Evaluate(new PushEventView(invite.Json), new PushContext(0, displayName, 0, NoLevels));
        if (outcome is { Notify: true })
            await actions.InsertAsync(session, [Row(invitee, invite, streamOrdering, PushActionStore.MainThread, outcome)], unread: false);
    }

    private static PushActionRow Row(string userId, Pdu pdu, long streamOrdering, string threadId, PushOutcome outcome) => new()
    {
        UserId = userId, EventId = pdu.EventId, RoomId = pdu.RoomId, StreamOrdering = streamOrdering, ThreadId = threadId,
        Highlight = outcome.Highlight ? 1 : 0, Actions = outcome.ActionsJson, Ts = pdu.OriginServerTs,
    };

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }

    /// <summary>The thread an event belongs to (its root's ID), or the main timeline.</summary>
    public static string ThreadOf(JsonObject ev) =>
        ev["content"]?["m.relates_to"] is JsonObject relation && relation["rel_type"]?.GetValue<string>() == "m.thread"
            && relation["event_id"] is JsonValue root && root.TryGetValue<string>(out var rootId)
            ? rootId
            : PushActionStore.MainThread;

    /// <summary>
    /// The room's state events at the keys, read through the event's own session in one query for those not cached;
    /// the event being written (not stored yet) stands for itself.
    /// </summary>
    private async Task<Dictionary<StateKey, Pdu>> StateEventsAsync(DbSession session, Pdu current, RoomSnapshot room, IReadOnlyList<StateKey> keys)
    {
        var stored = new List<StateKey>(keys.Count);
        var own = new List<StateKey>();
        foreach (var key in keys)
            (room.StateEventId(key) == current.EventId ? own : stored).Add(key);
        var found = await events.StateEventsAsync(room.State, stored, room.Version, CancellationToken.None, session);
        foreach (var key in own)
            found[key] = current;
        return found;
    }
}
