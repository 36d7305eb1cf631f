using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Rooms;

/// <summary>The spine's path for events from other servers: the checks the spec requires on receipt of a PDU.</summary>
public sealed partial class EventSpine
{
    /// <summary>
    /// Accepts an event from another server into a room this server knows, with the checks the spec requires on
    /// receipt of a PDU. Its prev and auth events must already be here (fetching missing ones is federation's job).
    /// <paramref name="findKey"/> resolves a server's verify key and when it was fetched.
    /// </summary>
    public Task<ReceiveResult> ReceiveAsync(Pdu received, Func<string, string, (VerifyKey Key, long FetchedAtTs)?> findKey, CancellationToken ct) =>
        RetryWhenStaleAsync(() => ReceiveOnceAsync(received, findKey, ct));

    private async Task<ReceiveResult> ReceiveOnceAsync(Pdu received, Func<string, string, (VerifyKey Key, long FetchedAtTs)?> findKey, CancellationToken ct)
    {
        if (!EventSigning.HasValidSignatures(received, findKey, out var signatureError))
            return new ReceiveResult(ReceiveOutcome.Dropped, signatureError);
        var pdu = received;
        if (!EventHashes.HasValidContentHash(received.Json))
            pdu = Pdu.Parse(Redaction.Redact(received.Json, received.Version), received.Version);

        using var _ = await locks.AcquireAsync(pdu.RoomId, ct);
        var room = await GetRoomAsync(pdu.RoomId, ct);
        if (room is null)
            return new ReceiveResult(ReceiveOutcome.Dropped, "unknown room");
        if (room.Version.Id != pdu.Version.Id)
            return new ReceiveResult(ReceiveOutcome.Dropped, "wrong room version");
        if (await db.ReadAsync(s => rooms.GetEventAsync(s, pdu.EventId), ct) is not null)
            return new ReceiveResult(ReceiveOutcome.Duplicate, "already received");

        var cited = await db.ReadAsync(s => rooms.GetEventsAsync(s, pdu.PrevEvents.Concat(pdu.AuthEvents).Distinct().ToList()), ct);
        var byId = cited.ToDictionary(r => r.EventId);
        var missing = pdu.PrevEvents.Concat(pdu.AuthEvents).Where(id => !byId.ContainsKey(id)).Distinct().ToList();
        if (missing.Count > 0)
            return new ReceiveResult(ReceiveOutcome.MissingEvents, $"missing prev or auth events: {string.Join(", ", missing)}");

        // 4. Auth against its own auth events.
        var authEvents = pdu.AuthEvents.Select(id => events.FromRow(byId[id], room.Version)).ToList();
        var create = room.Version.RoomIdIsCreateEventHash ? await events.GetAsync("$" + pdu.RoomId[1..], room.Version, ct) : null;
        var authCheck = AuthEventSelection.CheckAgainstAuthEvents(pdu, authEvents, id => byId.TryGetValue(id, out var row) && row.Rejected == 1, create);

        // 5. Auth against the state before it, resolved from the states after its prev events.
        var prevRows = pdu.PrevEvents.Select(id => byId[id]).ToList();
        var stateBefore = await StateBeforeAsync(room, pdu, prevRows, ct);
        var stateBeforeGroup = prevRows.Count == 1 ? prevRows[0].StateGroup : (long?)null;
        if (authCheck.Allowed)
            authCheck = EventAuthorizer.Check(pdu, await LoadStateLookupAsync(room.Version, stateBefore, pdu, ct));
        // A redaction naming a known event of another room is no redaction of this one (rejected, as Synapse does).
        if (authCheck.Allowed && pdu.Redacts is { } target && await db.ReadAsync(s => rooms.GetEventAsync(s, target), ct) is { } redacted
            && redacted.RoomId != pdu.RoomId)
            authCheck = AuthResult.Reject("the redaction names an event of another room");
        if (!authCheck.Allowed)
        {
            var rejected = await PersistAsync(room, pdu, stateBefore, stateBeforeGroup, Disposition.Rejected, null, ct);
            return new ReceiveResult(ReceiveOutcome.Rejected, authCheck.Reason, rejected);
        }

        // 6. Soft-fail against the current state.
        var current = EventAuthorizer.Check(pdu, await LoadStateLookupAsync(room.Version, room.State, pdu, ct));
        var disposition = current.Allowed ? Disposition.Accepted : Disposition.SoftFailed;
        var persisted = await PersistAsync(room, pdu, stateBefore, stateBeforeGroup, disposition, null, ct);
        return current.Allowed
            ? new ReceiveResult(ReceiveOutcome.Accepted, "", persisted)
            : new ReceiveResult(ReceiveOutcome.SoftFailed, current.Reason, persisted);
    }

    /// <summary>The room state just before a stored event (what <c>state_ids</c> and <c>state</c> answer for it).</summary>
    public async Task<IReadOnlyDictionary<StateKey, string>> StateBeforeEventAsync(RoomSnapshot room, Pdu pdu, CancellationToken ct)
    {
        var prevRows = await db.ReadAsync(s => rooms.GetEventsAsync(s, pdu.PrevEvents.ToList()), ct);
        return await StateBeforeAsync(room, pdu, prevRows, ct);
    }

    /// <summary>
    /// The state before an event: the state after its prev event, or the resolution of several. A rejected prev event
    /// changed nothing: its state group is the state before it, which is the state it leaves.
    /// </summary>
    private async Task<IReadOnlyDictionary<StateKey, string>> StateBeforeAsync(RoomSnapshot room, Pdu pdu, List<EventRow> prevRows, CancellationToken ct)
    {
        var states = new List<IReadOnlyDictionary<StateKey, string>>();
        foreach (var row in prevRows)
            states.Add(await db.ReadAsync(s => stateGroups.LoadAsync(s, row.StateGroup), ct));
        return await ResolveAsync(room.Version, pdu.RoomId, states, ct);
    }

    /// <summary>
    /// Bridges a gap too long for <c>get_missing_events</c>: stores a missing prev event as an outlier whose state is what
    /// its server's <c>state_ids</c> said, with the state and auth events fetched for it (signatures and auth checked;
    /// failures kept as rejected). The event that cited it can then be checked against that state.
    /// </summary>
    public async Task ImportGapAsync(RoomSnapshot room, Pdu prev, IReadOnlyList<string> stateIdsBeforePrev, IReadOnlyList<Pdu> fetched,
        Func<Pdu, Task<Func<string, string, (VerifyKey Key, long FetchedAtTs)?>>> keysFor, CancellationToken ct)
    {
        using var roomLock = await locks.AcquireAsync(room.RoomId, ct);
        var all = new Dictionary<string, Pdu>(StringComparer.Ordinal);
        foreach (var pdu in fetched.Append(prev).Where(p => p.RoomId == room.RoomId && p.Version.Id == room.Version.Id))
            all.TryAdd(pdu.EventId, pdu);
        var stored = (await db.ReadAsync(s => rooms.GetEventsAsync(s, all.Keys.Concat(stateIdsBeforePrev).Concat(all.Values.SelectMany(p => p.AuthEvents)).Distinct().ToList()), ct))
            .ToDictionary(r => r.EventId);
        async Task<Pdu?> Find(string id) => all.GetValueOrDefault(id) ?? (stored.TryGetValue(id, out var row) ? events.FromRow(row, room.Version) : null);

        var create = room.Version.RoomIdIsCreateEventHash ? await events.GetAsync("$" + room.RoomId[1..], room.Version, ct) : null;
        var rejected = new HashSet<string>(stored.Values.Where(r => r.Rejected == 1).Select(r => r.EventId), StringComparer.Ordinal);
        foreach (var pdu in all.Values.Where(p => !stored.ContainsKey(p.EventId)).OrderBy(p => p.Depth))
        {
            var authEvents = new List<Pdu>();
            foreach (var id in pdu.AuthEvents)
                if (await Find(id) is { } authEvent)
                    authEvents.Add(authEvent);
            var ok = EventSigning.HasValidSignatures(pdu, await keysFor(pdu), out _)
                && AuthEventSelection.CheckAgainstAuthEvents(pdu, authEvents, rejected.Contains, create).Allowed;
            if (!ok)
                rejected.Add(pdu.EventId);
        }
        var stateAfterPrev = new Dictionary<StateKey, string>();
        foreach (var id in stateIdsBeforePrev)
            if (!rejected.Contains(id) && await Find(id) is { IsState: true } stateEvent)
                stateAfterPrev[stateEvent.StateKeyPair] = id;
        if (prev.IsState && !rejected.Contains(prev.EventId))
            stateAfterPrev[prev.StateKeyPair] = prev.EventId;

        await db.WriteAsync(async s =>
        {
            var group = await stateGroups.CreateAsync(s, room.RoomId, null, new Dictionary<StateKey, string>(), stateAfterPrev);
            foreach (var pdu in all.Values.Where(p => !stored.ContainsKey(p.EventId)).OrderBy(p => p.Depth))
                await rooms.InsertEventAsync(s, new EventRow(await streams.NextAsync(s, "events"), pdu.EventId, pdu.RoomId, pdu.Type, pdu.StateKey,
                    pdu.Sender, pdu.Depth, pdu.OriginServerTs, pdu.EventId == prev.EventId ? group : 0, null, pdu.CanonicalText(),
                    Rejected: rejected.Contains(pdu.EventId) ? 1 : 0, Outlier: 1));
        }, ct);
        foreach (var pdu in all.Values)
            events.Add(pdu);
    }
}
