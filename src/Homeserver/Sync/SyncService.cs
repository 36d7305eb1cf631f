using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Observability;
using Matrix.Homeserver.Receipts;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// <c>/sync</c>: joined rooms (timeline, state before it, summary), invites with stripped state, knocks and leaves,
/// initial or since a token, long-polling on the <see cref="SyncNotifier"/> until something arrives.
/// </summary>
public sealed class SyncService(
    Database db, RoomStore rooms, StreamPositions streams, EventSpine spine, RoomReader reader, EventCache events, SyncNotifier notifier,
    AccountDataStore accountData, ReceiptStore receipts, TypingService typing, Presence.PresenceService presence,
    E2ee.ToDeviceService toDevice, E2ee.DeviceListService deviceLists, E2ee.DeviceKeyStore deviceKeys, Push.PushActionStore pushActions,
    Relations.RelationBundler bundler, IgnoredUsers ignoredUsers, InvitePermissions invitePermissions, RecentEventIndex recentEvents,
    LazyLoadedMembers lazyLoaded, UnansweredSends unanswered, SharedClientEvents sharedEvents, SharedStateRows stateRows,
    Config.HomeserverConfig config)
{
    /// <summary>Where this sync starts and ends in every stream.</summary>
    private readonly record struct Window(SyncToken? Since, SyncToken UpTo)
    {
        public SyncToken From => Since ?? new SyncToken(0);
    }

    public const int MaxTimeoutMs = 60_000;

    private const int JoinedRoomsInParallel = 8;
    private const int FirstPagesInBatch = 50;
    // Pages of a room's events read at most to fill a timeline with events the user may see (Synapse reads five).
    private const int MaxTimelinePages = 5;

    /// <param name="writeOnly">
    /// the response is written out as it is, not read again: its timeline events may be pieces of JSON serialised once
    /// for every sync that carries them (see <see cref="SharedClientEvents"/>), its objects fields written straight
    /// out (<see cref="WrittenObject"/>)
    /// </param>
    public async Task<JsonNode> SyncAsync(Requester requester, SyncToken? since, SyncFilter filter, bool fullState, bool useStateAfter, int timeoutMs,
        bool writeOnly, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var waiter = notifier.Register(user, out var unregister);
        try
        {
            // A client polling again right after a response mostly finds every stream where its token left it: then
            // nothing can be new, and the first build is skipped. (Tokens are read as since.Value, not copied into
            // locals: each would be a field of this method's state, which a waiting poll keeps for as long as it waits.)
            if (since is null || fullState || timeoutMs <= 0 || await CurrentPositionsAsync(ct) != since.Value)
            {
                var (response, empty) = await BuildAsync(requester, since, filter, fullState, useStateAfter, writeOnly, ct);
                if (!empty || since is null || timeoutMs <= 0)
                    return response;
            }
            await notifier.WaitAsync(waiter, TimeSpan.FromMilliseconds(Math.Min(timeoutMs, MaxTimeoutMs)), ServerMetrics.SyncLongPoll, ct);
            // A poll that timed out with every stream where the token left it has nothing to say but the key counts
            // (a thousand idle clients re-polling every half minute should cost next to nothing).
            if (await CurrentPositionsAsync(ct) == since.Value)
                return await EmptyResponseAsync(requester, since.Value, writeOnly, ct);
            // This device's own events that are new to it go a moment after their sends' answers (see UnansweredSends).
            if (unanswered.HoldAfterAnswers(user, requester.DeviceId, since.Value.Events) is var hold && hold > TimeSpan.Zero)
                await Task.Delay(hold, ct);
            return (await BuildAsync(requester, since, filter, fullState, useStateAfter, writeOnly, ct)).Response;
        }
        finally
        {
            unregister();
        }
    }

    /// <summary>Where every stream a sync token covers is now (from memory once the server has read each stream's position).</summary>
    public ValueTask<SyncToken> CurrentPositionsAsync(CancellationToken ct) =>
        streams.TryCurrent("events", out var events) && streams.TryCurrent("account_data", out var accountData)
        && streams.TryCurrent("receipts", out var receipts) && streams.TryCurrent("presence", out var presence)
        && streams.TryCurrent("to_device", out var toDevice) && streams.TryCurrent("device_lists", out var deviceLists)
            ? ValueTask.FromResult(new SyncToken(events, accountData, receipts, typing.CurrentSerial, presence, toDevice, deviceLists))
            : new ValueTask<SyncToken>(db.ReadAsync(async s => new SyncToken(
                await streams.CurrentAsync(s, "events"), await streams.CurrentAsync(s, "account_data"), await streams.CurrentAsync(s, "receipts"),
                typing.CurrentSerial, await streams.CurrentAsync(s, "presence"), await streams.CurrentAsync(s, "to_device"),
                await streams.CurrentAsync(s, "device_lists")), ct));

    private async Task<(JsonNode Response, bool Empty)> BuildAsync(Requester requester, SyncToken? since, SyncFilter filter, bool fullState,
        bool useStateAfter, bool writeOnly, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var positions = await CurrentPositionsAsync(ct);
        if (since is { } from)
        {
            positions = positions.AtLeast(from);
            // Not past this device's own events whose sends are still being answered (the answer wakes this sync).
            if (unanswered.FirstUnanswered(user, requester.DeviceId) is { } unansweredSend && unansweredSend <= positions.Events)
                positions = positions with { Events = Math.Max(from.Events, unansweredSend - 1) };
        }
        var window = new Window(since, positions);
        var upTo = positions.Events;
        var sinceEvents = window.From.Events;
        // Everything that depends only on the user and the window is read in one round trip, leaving out the streams
        // that did not move in the window (a sync woken by a message mostly finds only the events stream moved, and
        // the recent-event index tells which rooms it moved in).
        var userMemberships = rooms.UserMemberships(user);
        var accountDataChanges = since is null || window.From.AccountData < positions.AccountData
            ? accountData.ChangedSince(user, window.From.AccountData, positions.AccountData) : null;
        var keyCounts = deviceKeys.CountsForSync(user, requester.DeviceId);
        var recent = since is null ? null : recentEvents.Find(sinceEvents, upTo);
        var ownMembershipChanges = since is null || recent is { HasMemberEvents: false } ? null : rooms.MembershipEventsSince(user, sinceEvents, upTo);
        // An incremental sync looks only at joined rooms where something happened in the window: events, receipts,
        // typing or room account data (with a thousand quiet rooms, looking at each would cost a query apiece).
        var incremental = since is not null && !fullState;
        var roomsWithEvents = incremental && recent is null ? rooms.RoomsWithEvents(sinceEvents, upTo) : null;
        var receiptsMoved = window.From.Receipts < window.UpTo.Receipts;
        var roomsWithReceipts = incremental && receiptsMoved ? receipts.RoomsChanged(window.From.Receipts, window.UpTo.Receipts) : null;
        var inbox = toDevice.ReadsForSync(user, requester.DeviceId, since?.ToDevice, positions.ToDevice);
        var deviceListReads = since is null ? null
            : deviceLists.ReadsForSync(user, window.From.DeviceLists, positions.DeviceLists, sinceEvents, upTo, recent, ownMembershipChanges);
        // A sync woken by new events mostly shows just the rooms they came in: what those need is read in this round
        // trip already, for the ones the user may be joined to (left unused for a room the user turns out not to be
        // joined to in the window; one missed here is read in the next round trip).
        // The user's rooms with something new in the window, known now when the user's rooms are (the index looks
        // through the fewer of the window's events and the user's rooms).
        var eventRooms = incremental && recent is not null && userMemberships.Reads.Count == 0 ? recent.Rooms(userMemberships.Result.Memberships) : null;
        var likelyJoined = incremental && recent is not null ? LikelyJoined(recent, eventRooms, userMemberships, user) : null;
        var early = likelyJoined is { Count: > 0 and <= FirstPagesInBatch }
            ? JoinedRoomReads(user, likelyJoined, window, filter, receiptsMoved, withPages: true)
            : JoinedRoomReadSet.None;
        var firstReads = new ReadBatch().Add(accountDataChanges).Add(ownMembershipChanges).Add(roomsWithEvents).Add(roomsWithReceipts)
            .AddAll(userMemberships.Reads).AddAll(keyCounts.Reads);
        inbox.AddTo(firstReads);
        deviceListReads?.AddTo(firstReads);
        await db.ReadAllAsync(early.AddTo(firstReads).Reads, ct);
        IReadOnlySet<string> changed = ownMembershipChanges?.Result is { Count: > 0 } ownChanges ? ownChanges.Select(e => e.RoomId).ToHashSet() : NoRooms;
        var changedAccountData = accountDataChanges?.Result ?? [];
        if (since is null)
            AddDefaultPushRules(changedAccountData, user);
        var (memberships, forgotten, pendingRemoteInvites) = userMemberships.Result;
        eventRooms ??= !incremental ? NoRooms
            : recent is not null ? recent.Rooms(memberships) : roomsWithEvents!.Result.ToHashSet(StringComparer.Ordinal);
        IReadOnlySet<string> otherActive = roomsWithReceipts?.Result is not { Count: > 0 } && changedAccountData.Count == 0 ? NoRooms
            : (roomsWithReceipts?.Result ?? []).Concat(changedAccountData.Select(e => e.RoomId)).ToHashSet(StringComparer.Ordinal);
        bool Active(string roomId) => eventRooms.Contains(roomId) || otherActive.Contains(roomId);

        var ignored = await ignoredUsers.OfAsync(user, ct);
        Task<bool>? invitesBlockedRead = null;
        Task<bool> InvitesBlockedAsync() => invitesBlockedRead ??= invitePermissions.BlocksInvitesAsync(user, ct);
        var (join, invite, leave, knock) = (new RoomSection(), new RoomSection(), new RoomSection(), new RoomSection());
        var joinedRooms = new List<(RoomSnapshot Room, bool FullState, bool NewlyJoined)>();
        var sentMembers = filter.State.LazyLoadMembers && !filter.State.IncludeRedundantMembers
            ? lazyLoaded.For(user, requester.DeviceId, fresh: since is null) : null;
        foreach (var membership in memberships.Where(m => filter.IncludesRoom(m.RoomId) && !forgotten.Contains(m.RoomId)))
        {
            if (incremental && membership.Membership == "join" && !Active(membership.RoomId) && !changed.Contains(membership.RoomId)
                && !typing.Get(membership.RoomId, window.From.Typing).Changed)
                continue;
            var room = await spine.GetRoomAsync(membership.RoomId, ct);
            if (room is null)
                continue;
            var isNew = since is null || changed.Contains(room.RoomId);
            // A room the user's own member events changed in is new to them only if they were not joined before (a new
            // display name is no reason for the full state).
            var newlyJoined = since is not null && isNew && !await WasJoinedAsync(room, user, sinceEvents, ct);
            switch (membership.Membership)
            {
                case "join":
                    joinedRooms.Add((room, fullState || since is null || newlyJoined, newlyJoined));
                    break;
                case "invite" when isNew && !await InvitesBlockedAsync() && !ignored.Contains((await events.GetAsync(membership.EventId, room.Version, ct))?.Sender ?? ""):
                    invite.Add(room.RoomId, new JsonObject { ["invite_state"] = new JsonObject { ["events"] = await StrippedStateAsync(room, membership.EventId, ct) } });
                    break;
                case "knock" when isNew:
                    knock.Add(room.RoomId, new JsonObject { ["knock_state"] = new JsonObject { ["events"] = await StrippedStateAsync(room, membership.EventId, ct) } });
                    break;
                // An initial sync shows rooms the user was banned or kicked from, as Synapse does; rooms they left
                // themselves only with include_leave.
                case "leave" or "ban" when (since is not null && isNew) || (since is null && (filter.IncludeLeave || membership.Membership == "ban"
                        || (await events.GetAsync(membership.EventId, room.Version, ct))?.Sender != user)):
                    leave.Add(room.RoomId, await LeftRoomAsync(requester, room, membership.EventId, since, window.UpTo.Events,
                        fullState || since is null || newlyJoined, filter, ignored, sentMembers, ct));
                    break;
            }
        }
        // What every joined room needs from the receipts and push actions is read for all of them at once (with the
        // first timeline pages of a few rooms, an incremental sync's usual lot); then the rooms are built a few at a
        // time (each waits mostly on the database) and added in membership order.
        var lateRooms = new List<string>();
        foreach (var (room, _, _) in joinedRooms)
            if (!early.Covers(room.RoomId))
                lateRooms.Add(room.RoomId);
        var late = JoinedRoomReads(user, lateRooms, window, filter, since is null || receiptsMoved, withPages: joinedRooms.Count <= FirstPagesInBatch);
        await db.ReadAllAsync(late.AddTo(new ReadBatch()).Reads, ct);
        var roomReceipts = early.Receipts.Count + late.Receipts.Count == 0 ? NoReceipts
            : early.Receipts.Concat(late.Receipts).SelectMany(r => r.Result).ToLookup(r => r.RoomId);
        var unreadCounts = late.Rooms.Count == 0 ? early.Unread.Result : early.Unread.Result.Concat(late.Unread.Result);
        // One room to build (a woken sync's usual lot) takes its counts from the few read, without a lookup of them.
        var unreadByRoom = joinedRooms.Count > 1 ? unreadCounts.ToLookup(c => c.RoomId) : null;
        IEnumerable<Push.UnreadCount> UnreadOf(string roomId) => unreadByRoom?[roomId] ?? unreadCounts.Where(c => c.RoomId == roomId);
        List<EventRow>? FirstPage(string roomId) => early.FirstPage(roomId) ?? late.FirstPage(roomId);
        Task<(JsonNode Section, JsonArray Timeline)?> BuildJoined((RoomSnapshot Room, bool FullState, bool NewlyJoined) r) =>
            JoinedRoomAsync(requester, r.Room, window, filter, r.FullState, r.NewlyJoined, useStateAfter, changedAccountData, ignored,
                sentMembers, roomReceipts[r.Room.RoomId], UnreadOf(r.Room.RoomId), r.NewlyJoined ? null : FirstPage(r.Room.RoomId), writeOnly);
        // A sync woken by a message mostly has the one room to build.
        using var building = joinedRooms.Count > 1 ? new SemaphoreSlim(JoinedRoomsInParallel) : null;
        List<Task<(JsonNode Section, JsonArray Timeline)?>> built = joinedRooms.Count == 1 ? [BuildJoined(joinedRooms[0])] : joinedRooms.Select(async r =>
        {
            await building!.WaitAsync(ct);
            try
            {
                return await BuildJoined(r);
            }
            finally
            {
                building.Release();
            }
        }).ToList();
        var timelines = new List<JsonArray>();
        for (var i = 0; i < joinedRooms.Count; i++)
            if (await built[i] is var (joined, timeline))
            {
                join.Add(joinedRooms[i].Room.RoomId, joined);
                timelines.Add(timeline);
            }

        // Invites to rooms this server is not in (unknown yet, or left: no event of the room reaches it), with the
        // stripped state the inviting server sent, and the leaves that declined them (shown as left once, and in
        // initial syncs with include_leave).
        foreach (var remote in pendingRemoteInvites)
            if (remote.Membership == "leave")
            {
                if ((since is null ? filter.IncludeLeave : remote.StreamOrdering > sinceEvents) && remote.StreamOrdering <= upTo
                    && filter.IncludesRoom(remote.RoomId) && !leave.Has(remote.RoomId) && !await spine.IsInRoomAsync(remote.RoomId, ct))
                    leave.Add(remote.RoomId, OutOfBandLeave(remote));
            }
            else if ((since is null || remote.StreamOrdering > sinceEvents) && remote.StreamOrdering <= upTo && filter.IncludesRoom(remote.RoomId)
                && !invite.Has(remote.RoomId) && !knock.Has(remote.RoomId) && !await spine.IsInRoomAsync(remote.RoomId, ct))
            {
                if (await InvitesBlockedAsync() || ignored.Contains(JsonNode.Parse(remote.EventJson)?["sender"]?.GetValue<string>() ?? ""))
                    continue;
                var stripped = RemoteStrippedState(remote);
                if (remote.Membership == "knock")
                    knock.Add(remote.RoomId, new JsonObject { ["knock_state"] = new JsonObject { ["events"] = stripped } });
                else
                    invite.Add(remote.RoomId, new JsonObject { ["invite_state"] = new JsonObject { ["events"] = stripped } });
            }

        var (toDeviceEvents, toDevicePosition) = await toDevice.ForSyncAsync(user, requester.DeviceId, since?.ToDevice, positions.ToDevice, inbox, ct);
        var (devicesChanged, devicesLeft) = deviceListReads is null ? ([], []) : await deviceLists.ChangesForSyncAsync(user, deviceListReads, ct);
        var accountDataEvents = AccountDataEvents(changedAccountData, AccountDataStore.Global, filter.AccountData, user);
        var presenceChanges = await presence.ChangesForAsync(user, window.From.Presence, positions.Presence,
            since is null ? [] : NewlySharing(user, timelines, joinedRooms), ct);
        var presenceEvents = presenceChanges.Count == 0 ? presenceChanges
            : new JsonArray(presenceChanges.Where(e => filter.Presence.Matches("m.presence", e!["sender"]!.GetValue<string>())).Select(e => e!.DeepClone()).ToArray());
        var response = Response(writeOnly, positions with { ToDevice = toDevicePosition }, join, invite, leave, knock,
            accountDataEvents, presenceEvents, toDeviceEvents, devicesChanged, devicesLeft, keyCounts.Result);
        var globalCount = accountDataEvents.Count + presenceEvents.Count + toDeviceEvents.Count + devicesChanged.Count + devicesLeft.Count;
        return (response, join.Count + invite.Count + leave.Count + knock.Count + globalCount == 0);
    }

    private async Task<JsonNode> EmptyResponseAsync(Requester requester, SyncToken positions, bool writeOnly, CancellationToken ct)
    {
        var keyCounts = deviceKeys.CountsForSync(requester.UserId.Value, requester.DeviceId);
        await db.ReadAllAsync(keyCounts.Reads, ct);
        return Response(writeOnly, positions, new RoomSection(), new RoomSection(), new RoomSection(), new RoomSection(), [], [], [], [], [], keyCounts.Result);
    }

    private static readonly IReadOnlyDictionary<StateKey, string> NoState = new Dictionary<StateKey, string>();

    private static readonly IReadOnlySet<string> NoRooms = new HashSet<string>();

    private static readonly JsonNode NoDeviceListChanges =
        WrittenObject.Of(true, ("changed", WrittenObject.Strings(true, [])), ("left", WrittenObject.Strings(true, [])));

    private static readonly ILookup<string, ReceiptRow> NoReceipts = Array.Empty<ReceiptRow>().ToLookup(r => r.RoomId);

    private static JsonNode Response(bool writeOnly, SyncToken next, RoomSection join, RoomSection invite, RoomSection leave, RoomSection knock,
        JsonArray accountData, JsonArray presence, JsonArray toDevice, IReadOnlyList<string> devicesChanged, IReadOnlyList<string> devicesLeft,
        E2ee.DeviceKeyCounts keyCounts) =>
        WrittenObject.Of(writeOnly,
            ("next_batch", next.ToString()),
            ("rooms", WrittenObject.Of(writeOnly,
                ("join", join.ToNode(writeOnly)), ("invite", invite.ToNode(writeOnly)), ("leave", leave.ToNode(writeOnly)), ("knock", knock.ToNode(writeOnly)))),
            ("account_data", WrittenObject.Events(writeOnly, accountData)),
            ("presence", WrittenObject.Events(writeOnly, presence)),
            ("to_device", WrittenObject.Events(writeOnly, toDevice)),
            ("device_lists", writeOnly && devicesChanged.Count + devicesLeft.Count == 0 ? NoDeviceListChanges : WrittenObject.Of(writeOnly,
                ("changed", WrittenObject.Strings(writeOnly, devicesChanged)), ("left", WrittenObject.Strings(writeOnly, devicesLeft)))),
            ("device_one_time_keys_count", WrittenObject.Of(writeOnly, E2ee.KeyService.CountsFields(keyCounts.OneTimeKeys))),
            ("device_unused_fallback_key_types", WrittenObject.Strings(writeOnly, keyCounts.UnusedFallbackAlgorithms)));

    /// <summary>
    /// The rooms of a window the user may be joined to: their joined rooms among <paramref name="eventRooms"/> when their
    /// memberships are known, else the window's rooms the room snapshots have them joined to.
    /// </summary>
    private List<string> LikelyJoined(RecentEventIndex.Window window, IReadOnlySet<string>? eventRooms, CachedLookup<string, UserMemberships> userMemberships,
        string user)
    {
        var likely = new List<string>();
        if (eventRooms is not null)
        {
            foreach (var membership in userMemberships.Result.Memberships)
                if (membership.Membership == "join" && eventRooms.Contains(membership.RoomId))
                    likely.Add(membership.RoomId);
        }
        else
            foreach (var roomId in window.Rooms())
                if (spine.MayBeJoined(roomId, user))
                    likely.Add(roomId);
        return likely;
    }

    /// <summary>The reads of joined rooms' changed receipts, unread counts and (optionally) first timeline pages.</summary>
    private sealed record JoinedRoomReadSet(
        IReadOnlySet<string> Rooms, List<SqlRead<ReceiptRow, List<ReceiptRow>>> Receipts, Push.UnreadLookup Unread,
        Dictionary<string, SqlRead<EventRow, List<EventRow>>> Pages, Dictionary<string, List<EventRow>> RecentPages)
    {
        public static readonly JoinedRoomReadSet None = new(new HashSet<string>(), [], Push.UnreadLookup.None, [], []);

        public ReadBatch AddTo(ReadBatch batch)
        {
            batch.AddAll(Receipts).AddAll(Unread.Reads);
            foreach (var page in Pages.Values)
                batch.Add(page);
            return batch;
        }

        public bool Covers(string roomId) => Rooms.Contains(roomId);

        /// <summary>The first timeline page of the room (newest first), when this set read it or found it in memory.</summary>
        public List<EventRow>? FirstPage(string roomId) => RecentPages.GetValueOrDefault(roomId) ?? Pages.GetValueOrDefault(roomId)?.Result;
    }

    private JoinedRoomReadSet JoinedRoomReads(string user, IReadOnlyCollection<string> roomIds, Window window, SyncFilter filter, bool receiptsMoved,
        bool withPages)
    {
        if (roomIds.Count == 0)
            return JoinedRoomReadSet.None;
        // A sync woken by new events mostly finds them among the rows this process wrote lately.
        var (pages, recentPages) = (new Dictionary<string, SqlRead<EventRow, List<EventRow>>>(), new Dictionary<string, List<EventRow>>());
        if (withPages)
            foreach (var id in roomIds)
                if (window.Since is not null && rooms.TryRecentRoomEvents(id, window.From.Events, window.UpTo.Events, TimelinePage(filter), out var recent))
                    recentPages[id] = recent;
                else
                    pages[id] = rooms.RecentPage(id, window.From.Events, window.UpTo.Events, TimelinePage(filter));
        // A loop, not a lambda: one capturing the window would be allocated with it on every call.
        var changedReceipts = new List<SqlRead<ReceiptRow, List<ReceiptRow>>>();
        if (receiptsMoved)
            foreach (var ids in roomIds.Chunk(500))
                changedReceipts.Add(receipts.ChangedSince(ids, window.From.Receipts, window.UpTo.Receipts));
        return new(roomIds.ToHashSet(StringComparer.Ordinal), changedReceipts, pushActions.UnreadForSync(user, roomIds), pages, recentPages);
    }

    /// <summary>The room's section of the response, and its timeline's events.</summary>
    private async Task<(JsonNode Section, JsonArray Timeline)?> JoinedRoomAsync(Requester requester, RoomSnapshot room, Window window, SyncFilter filter, bool fullState,
        bool newlyJoined, bool useStateAfter, List<AccountDataStore.Entry> changedAccountData, IReadOnlySet<string> ignored,
        LazyLoadedMembers.Sent? sentMembers, IEnumerable<ReceiptRow> changedReceipts, IEnumerable<Push.UnreadCount> unreadCounts, List<EventRow>? firstPage,
        bool writeOnly)
    {
        var ct = CancellationToken.None;
        var user = requester.UserId.Value;
        var since = window.Since;
        var sinceEvents = window.From.Events;
        var upTo = window.UpTo.Events;
        // A room just joined shows its latest events, not only those since the token, and is always limited (as Synapse).
        var (rows, limited) = await TimelineRowsAsync(room, newlyJoined ? 0 : sinceEvents, upTo, filter, VisibleIn(room, user, joinedNow: true, ignored), ct,
            firstPage);
        limited |= newlyJoined;
        var ephemeral = Ephemeral(room.RoomId, user, window, changedReceipts);
        var roomAccountData = AccountDataEvents(changedAccountData, room.RoomId, filter.RoomAccountData, user);
        if (rows.Count == 0 && !fullState && since is not null && ephemeral.Count == 0 && roomAccountData.Count == 0)
            return null;

        var timeline = await FormatTimelineAsync(requester, room, rows, filter.FederationFormat, ct, writeOnly);
        var startPosition = rows.Count > 0 ? rows[0].StreamOrdering - 1 : upTo;
        var (heroes, named) = await HeroesAsync(room, user, ct);
        // With use_state_after (v1.16) the state section is the state at the end of the timeline, else at its start.
        var state = await StateSectionAsync(requester, room, rows, useStateAfter ? upTo : startPosition, fullState ? null : sinceEvents,
            fullState || limited || useStateAfter, useStateAfter, filter, heroes, sentMembers, upTo, ct, writeOnly);
        (string, JsonNode?)[] counts = [("m.joined_member_count", room.JoinedMembers.Count), ("m.invited_member_count", room.InvitedMembers.Count)];
        var summary = WrittenObject.Of(writeOnly, named ? counts : [.. counts, ("m.heroes", WrittenObject.Strings(writeOnly, heroes))]);
        var (unread, threadUnread) = UnreadCounts(unreadCounts, filter.Timeline.UnreadThreadNotifications, writeOnly);
        var joined = WrittenObject.Of(writeOnly,
        [
            ("timeline", WrittenObject.Of(writeOnly, ("events", timeline), ("limited", limited), ("prev_batch", new SyncToken(startPosition).ToString()))),
            (useStateAfter ? "state_after" : "state", WrittenObject.Events(writeOnly, state)),
            ("ephemeral", WrittenObject.Events(writeOnly, ephemeral)),
            ("account_data", WrittenObject.Events(writeOnly, roomAccountData)),
            ("summary", summary),
            ("unread_notifications", unread),
            .. threadUnread is null ? [] : new[] { ("unread_thread_notifications", (JsonNode?)threadUnread) },
        ]);
        return (joined, timeline);
    }

    /// <summary>
    /// The state section of a room: the state at <paramref name="position"/> that differs from the state at
    /// <paramref name="since"/> (all of it when null) if <paramref name="delta"/>, else none; with lazy-loaded members,
    /// only the members the timeline's senders and the heroes need (and the user's own in a full sync), these even when
    /// unchanged unless this device was sent them already. In a gappy sync every membership change in the gap still comes,
    /// as Synapse does.
    /// </summary>
    private async ValueTask<JsonArray> StateSectionAsync(Requester requester, RoomSnapshot room, List<EventRow> rows, long position, long? since, bool delta,
        bool useStateAfter, SyncFilter filter, IReadOnlyList<string> heroes, LazyLoadedMembers.Sent? sentMembers, long syncUpTo, CancellationToken ct,
        bool writeOnly = false)
    {
        var user = requester.UserId.Value;
        var lazy = filter.State.LazyLoadMembers;
        var full = since is null;
        var needed = new HashSet<string>(StringComparer.Ordinal);
        if (lazy)
        {
            // A member event earlier in the timeline already tells the client about its sender (except for state_after).
            var inTimeline = new HashSet<string>(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                if (useStateAfter || !inTimeline.Contains(row.Sender))
                    needed.Add(row.Sender);
                if (row.Type == "m.room.member" && row.StateKey is { } member)
                    inTimeline.Add(member);
            }
            needed.UnionWith(heroes.Where(h => !inTimeline.Contains(h)));
            if (full)
                needed.Add(user);
        }
        var state = new JsonArray();
        if (!delta && needed.Count == 0)
            return state;
        // The state before a timeline that starts with a message is the state the message was sent in, known without
        // asking the database which event came last before it (a woken sync's usual case).
        var stateMap = rows.Count > 0 && rows[0].StateKey is null && position == rows[0].StreamOrdering - 1
            ? await reader.StateGroupAsync(rows[0].StateGroup, ct)
            : await StateAtAsync(room.RoomId, position, ct);
        if (stateMap.Count == 0 && rows.Count > 0 && !useStateAfter)
            stateMap = await StateBeforeFirstEventAsync(rows[0], ct);
        var baseline = delta && since is { } from ? await StateAtAsync(room.RoomId, from, ct) : NoState;
        bool Unsent(string member, string eventId) => sentMembers is null || !sentMembers.Has(room.RoomId, member, eventId);
        // The same state group at both ends (a woken sync's usual case: messages only) changes nothing, and only the
        // lazily loaded members the client lacks are looked up, not every entry of a big room's state.
        var wanted = delta && !ReferenceEquals(stateMap, baseline)
            ? stateMap
                .Where(entry =>
                {
                    var isMember = entry.Key.Type == "m.room.member";
                    if (lazy && isMember && needed.Contains(entry.Key.Key))
                        return Unsent(entry.Key.Key, entry.Value);
                    return !(baseline.TryGetValue(entry.Key, out var old) && old == entry.Value) && !(lazy && isMember && full);
                })
                .Select(entry => entry.Value).ToList()
            : needed.Select(member => stateMap.TryGetValue(StateKey.Member(member), out var eventId) && Unsent(member, eventId) ? eventId : null)
                .OfType<string>().ToList();
        // One query for the room's state events rather than one per event (an initial sync of many rooms); none for a
        // woken sync whose client has the members it needs.
        var wantedRows = wanted.Count == 0 ? [] : await stateRows.GetAsync(wanted, syncUpTo, ct);
        foreach (var eventId in wanted)
            if (wantedRows.TryGetValue(eventId, out var stateRow) && filter.State.Matches(stateRow.Type, stateRow.Sender))
            {
                // Nothing reads a written-only response's state section back: its events go as the syncs of one
                // message share them (a big room's thousand woken syncs each carry the sender's member event).
                state.Add(writeOnly && !filter.FederationFormat && stateRow.RedactedBy is null
                    ? sharedEvents.ToClient(events.FromRow(stateRow, room.Version), reader.Now, transactionId: null)
                    : await reader.ToClientAsync(room, stateRow, ct, federationFormat: filter.FederationFormat));
                if (stateRow.Type == "m.room.member")
                    sentMembers?.Add(room.RoomId, stateRow.StateKey!, stateRow.EventId);
            }
        foreach (var row in rows.Where(r => r.Type == "m.room.member"))
            sentMembers?.Add(room.RoomId, row.StateKey!, row.EventId);
        return state;
    }

    /// <summary>
    /// Notifying events after the user's read receipts: <c>unread_notifications</c> counts all of them, or only the main
    /// timeline's when the filter asks for <c>unread_thread_notifications</c> (then given per thread root).
    /// </summary>
    private static (JsonNode Unread, JsonObject? PerThread) UnreadCounts(IEnumerable<Push.UnreadCount> counts, bool perThread, bool writeOnly)
    {
        long notifications = 0, highlights = 0;
        JsonObject? threads = null;
        foreach (var count in counts)
            if (perThread && count.ThreadId != Push.PushActionStore.MainThread)
                (threads ??= [])[count.ThreadId] = Counts(count.Notifications, count.Highlights);
            else
                (notifications, highlights) = (notifications + count.Notifications, highlights + count.Highlights);
        return (Counts(notifications, highlights), threads);

        JsonNode Counts(long notificationCount, long highlightCount) =>
            WrittenObject.Of(writeOnly, ("notification_count", notificationCount), ("highlight_count", highlightCount));
    }

    private static JsonArray AccountDataEvents(List<AccountDataStore.Entry> entries, string roomId, EventFilter filter, string userId) =>
        entries.Count == 0 ? [] : new(entries.Where(e => e.RoomId == roomId && filter.Matches(e.DataType, userId))
            .Select(e => (JsonNode)new JsonObject { ["type"] = e.DataType, ["content"] = JsonNode.Parse(e.Content) })
            .ToArray());

    /// <summary>
    /// The room's typing list when it changed, and receipts changed in the window, as <c>m.typing</c> and
    /// <c>m.receipt</c> events. Another user's private receipts are left out.
    /// </summary>
    private JsonArray Ephemeral(string roomId, string userId, Window window, IEnumerable<ReceiptRow> changedReceipts)
    {
        var ephemeral = new JsonArray();
        var (typingUsers, typingChanged) = typing.Get(roomId, window.From.Typing);
        if (typingChanged || (window.Since is null && typingUsers.Count > 0))
            ephemeral.Add(TypingService.Event(typingUsers));
        if (ReceiptEvent(changedReceipts, userId) is { } receiptEvent)
            ephemeral.Add(receiptEvent);
        return ephemeral;
    }

    /// <summary>Clients take the push rules from the initial sync: a user who never changed them is given the server defaults.</summary>
    internal static void AddDefaultPushRules(List<AccountDataStore.Entry> accountData, string userId)
    {
        if (!accountData.Any(e => e.RoomId == AccountDataStore.Global && e.DataType == Push.PushRuleService.AccountDataType))
            accountData.Add(new AccountDataStore.Entry(AccountDataStore.Global, Push.PushRuleService.AccountDataType,
                new JsonObject { ["global"] = Push.PushRuleSet.FromStored(null).ToJson(userId) }.ToJsonString()));
    }

    /// <summary>The stripped state an invite or knock over federation came with, and the member event itself.</summary>
    internal static JsonArray RemoteStrippedState(RemoteInviteRow row)
    {
        var stripped = JsonNode.Parse(row.InviteStateJson)!.AsArray();
        var memberEvent = JsonNode.Parse(row.EventJson)!.AsObject();
        stripped.Add(new JsonObject
        {
            ["type"] = "m.room.member", ["state_key"] = row.UserId, ["sender"] = memberEvent["sender"]?.DeepClone(),
            ["content"] = memberEvent["content"]?.DeepClone(),
        });
        return stripped;
    }

    /// <summary>Receipts as one <c>m.receipt</c> event (null when there are none), without other users' private receipts.</summary>
    internal static JsonObject? ReceiptEvent(IEnumerable<ReceiptRow> receipts, string userId)
    {
        var content = new JsonObject();
        foreach (var receipt in receipts.Where(r => r.ReceiptType != "m.read.private" || r.UserId == userId))
        {
            var byEvent = content[receipt.EventId] as JsonObject ?? (JsonObject)(content[receipt.EventId] = new JsonObject());
            var byType = byEvent[receipt.ReceiptType] as JsonObject ?? (JsonObject)(byEvent[receipt.ReceiptType] = new JsonObject());
            var entry = new JsonObject { ["ts"] = receipt.Ts };
            if (receipt.ThreadId.Length > 0)
                entry["thread_id"] = receipt.ThreadId;
            byType[receipt.UserId] = entry;
        }
        return content.Count > 0 ? new JsonObject { ["type"] = "m.receipt", ["content"] = content } : null;
    }

    /// <summary>
    /// A room the user left: the timeline up to their leave and the state at its start (all of it when they were not in
    /// the room at the last sync, <paramref name="fullState"/>, else what changed since); none when they left without
    /// having joined (an invite declined or withdrawn, a knock given up).
    /// </summary>
    private async Task<JsonObject> LeftRoomAsync(Requester requester, RoomSnapshot room, string leaveEventId, SyncToken? since, long upTo,
        bool fullState, SyncFilter filter, IReadOnlySet<string> ignored, LazyLoadedMembers.Sent? sentMembers, CancellationToken ct)
    {
        var leaveRow = (await db.ReadAsync(s => rooms.GetEventAsync(s, leaveEventId), ct))!;
        var after = since?.Events ?? 0;
        var (rows, limited) = await TimelineRowsAsync(room, after, leaveRow.StreamOrdering, filter,
            VisibleIn(room, requester.UserId.Value, joinedNow: false, ignored), ct);
        var startPosition = rows.Count > 0 ? rows[0].StreamOrdering - 1 : leaveRow.StreamOrdering;
        var state = await WasJoinedAsync(room, requester.UserId.Value, leaveRow.StreamOrdering - 1, ct)
            ? await StateSectionAsync(requester, room, rows, startPosition, fullState ? null : after, delta: true, useStateAfter: false, filter, [],
                sentMembers, upTo, ct)
            : [];
        return new JsonObject
        {
            ["timeline"] = new JsonObject
            {
                ["events"] = await FormatTimelineAsync(requester, room, rows, filter.FederationFormat, ct),
                ["limited"] = limited,
                ["prev_batch"] = new SyncToken(startPosition).ToString(),
            },
            ["state"] = new JsonObject { ["events"] = state },
            ["account_data"] = new JsonObject { ["events"] = new JsonArray() },
        };
    }

    /// <summary>A declined invite to a room this server is not in: the leave alone makes the room's timeline.</summary>
    private JsonObject OutOfBandLeave(RemoteInviteRow row)
    {
        var leaveEvent = Federation.Events.Pdu.Parse(JsonNode.Parse(row.EventJson)!.AsObject(), Federation.Rooms.RoomVersions.Find(row.RoomVersion)!);
        return new JsonObject
        {
            ["timeline"] = new JsonObject
            {
                ["events"] = new JsonArray(ClientEventFormat.ToClient(leaveEvent, reader.Now)),
                ["limited"] = false,
                ["prev_batch"] = new SyncToken(row.StreamOrdering - 1).ToString(),
            },
            ["state"] = new JsonObject { ["events"] = new JsonArray() },
            ["account_data"] = new JsonObject { ["events"] = new JsonArray() },
        };
    }

    /// <summary>Rows of the room's timeline read per query: enough for the filter's limit and its "limited" flag.</summary>
    private static int TimelinePage(SyncFilter filter) => Math.Max(filter.TimelineLimit + 1, 100);

    /// <summary>
    /// The newest events of a window that pass the timeline filter and that the user may see, oldest first, and whether
    /// older ones were left out (a limited timeline); <paramref name="firstPage"/>: the first page, already read.
    /// </summary>
    internal async ValueTask<(List<EventRow> Rows, bool Limited)> TimelineRowsAsync(RoomSnapshot room, long after, long upTo, SyncFilter filter,
        Func<EventRow, Task<bool>> visible, CancellationToken ct, List<EventRow>? firstPage = null)
    {
        var limit = filter.TimelineLimit;
        var matching = new List<EventRow>();
        var batch = TimelinePage(filter);
        for (var (ceiling, page) = (upTo, 1); ; page++)
        {
            var rows = firstPage ?? await NewestRoomEventsAsync(room.RoomId, after, ceiling, batch, ct);
            firstPage = null;
            foreach (var row in rows)
                if (filter.Timeline.Matches(row.Type, row.Sender) && await visible(row) && matching.Count < limit + 1)
                    matching.Add(row);
            if (matching.Count > limit || rows.Count < batch)
                break;
            // Past a few pages of events hidden from the user, the timeline says there is more rather than reading on.
            if (page == MaxTimelinePages)
                return (matching.AsEnumerable().Reverse().ToList(), true);
            ceiling = rows[^1].StreamOrdering - 1;
        }
        return (matching.Take(limit).Reverse().ToList(), matching.Count > limit);
    }

    // Its own method: a lambda capturing the page's bounds in the caller would be allocated on every call, read or not.
    private Task<List<EventRow>> NewestRoomEventsAsync(string roomId, long after, long upTo, int limit, CancellationToken ct) =>
        db.ReadAsync(s => rooms.RoomEventsAsync(s, roomId, after, upTo, limit, newestFirst: true), ct);

    /// <summary>
    /// Whether a sync shows an event: not a message of an ignored user (their state events stay, the room's state depends
    /// on them), and one the history visibility lets the user see, or part of the room's current state (as Synapse, so
    /// the client learns of state set while it could not see the room).
    /// </summary>
    internal Func<EventRow, Task<bool>> VisibleIn(RoomSnapshot room, string userId, bool joinedNow, IReadOnlySet<string> ignored) => async row =>
        (row.StateKey is not null || !ignored.Contains(row.Sender))
        && ((row.StateKey is { } key && room.State.TryGetValue(new StateKey(row.Type, key), out var current) && current == row.EventId)
            || await reader.CanSeeAsync(room, row, userId, joinedNow, CancellationToken.None));

    /// <summary>
    /// Timeline events the user may see, in client format, with the transaction ID on their own device's events and
    /// bundled aggregations; none from users they ignore.
    /// </summary>
    public async Task<JsonArray> TimelineAsync(Requester requester, RoomSnapshot room, List<EventRow> rows, bool joinedNow, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var ignored = await ignoredUsers.OfAsync(user, ct);
        var visible = new List<EventRow>();
        foreach (var row in rows)
            if ((row.StateKey is not null || !ignored.Contains(row.Sender)) && await reader.CanSeeAsync(room, row, user, joinedNow, ct))
                visible.Add(row);
        return await FormatTimelineAsync(requester, room, visible, federationFormat: false, ct);
    }

    /// <summary>Events in the client (or federation) format, with the transaction ID on the device's own events and bundled aggregations.</summary>
    internal async Task<JsonArray> FormatTimelineAsync(Requester requester, RoomSnapshot room, List<EventRow> rows, bool federationFormat, CancellationToken ct,
        bool writeOnly = false)
    {
        var user = requester.UserId.Value;
        var own = rows.Where(r => r.Sender == user).Select(r => r.EventId).ToList();
        var txnIds = own.Count == 0 ? []
            : rooms.TryRecentTxnIds(user, requester.DeviceId, own, out var recent) ? recent
            : await db.ReadAsync(s => rooms.TxnIdsAsync(s, user, requester.DeviceId, own), ct);
        // Fresh events of this server's users mostly have nothing relating to them yet, and the index knows when.
        var bundled = rows.Any(r => Federation.Events.EventSigning.ServerOf(r.Sender) != config.ServerName || recentEvents.MayBeRelatedTo(r.EventId, r.StreamOrdering));
        var timeline = new JsonArray();
        foreach (var row in rows)
        {
            var erased = !federationFormat && await reader.IsErasedForAsync(room, row, user, ct);
            var transactionId = txnIds.GetValueOrDefault(row.EventId);
            // Messages only: state events (member events among them) are read back from the response (NewlySharing).
            timeline.Add(writeOnly && !federationFormat && !bundled && !erased && row.RedactedBy is null && row.StateKey is null
                ? sharedEvents.ToClient(events.FromRow(row, room.Version), reader.Now, transactionId)
                : await reader.ToClientAsync(room, row, ct, transactionId, federationFormat, erased));
        }
        if (bundled)
            await bundler.AddAsync(room, timeline, user, ct);
        return timeline;
    }

    internal async Task<IReadOnlyDictionary<StateKey, string>> StateAtAsync(string roomId, long position, CancellationToken ct)
    {
        var row = await db.ReadAsync(s => rooms.LastEventAtAsync(s, roomId, position), ct);
        return row is null ? new Dictionary<StateKey, string>() : await reader.StateGroupAsync(row.StateGroup, ct);
    }

    /// <summary>
    /// The state before a timeline that starts the room's history on this server (a room joined over federation, whose
    /// earlier state arrived as outliers): the state after its first event without that event's own key, which the
    /// timeline carries.
    /// </summary>
    private async Task<IReadOnlyDictionary<StateKey, string>> StateBeforeFirstEventAsync(EventRow first, CancellationToken ct)
    {
        var after = await reader.StateGroupAsync(first.StateGroup, ct);
        return first.StateKey is null ? after : after.Where(p => p.Key != new StateKey(first.Type, first.StateKey)).ToDictionary();
    }

    internal async Task<JsonArray> StrippedStateAsync(RoomSnapshot room, string memberEventId, CancellationToken ct)
    {
        var member = await events.GetAsync(memberEventId, room.Version, ct);
        var stripped = await reader.StrippedStateAsync(room, ct, inviter: member?.Sender is { } sender && sender != member.StateKey ? sender : null);
        if (member is not null)
            stripped.Add(ClientEventFormat.ToStripped(member));
        return stripped;
    }

    /// <summary>
    /// The room's heroes (up to five joined or invited members other than the user, by user ID) and whether it has a name
    /// or canonical alias, when the summary leaves the heroes out (as Synapse; the spec requires them only without one).
    /// </summary>
    private async ValueTask<(IReadOnlyList<string> Heroes, bool Named)> HeroesAsync(RoomSnapshot room, string userId, CancellationToken ct)
    {
        if ((await spine.GetStateEventAsync(room, RoomNameKey, ct))?.ContentString("name") is { Length: > 0 }
            || (await spine.GetStateEventAsync(room, CanonicalAliasKey, ct))?.ContentString("alias") is { Length: > 0 })
            return ([], true);
        return (room.SmallestMemberIds.Where(member => member != userId).Take(5).ToList(), false);
    }

    private static readonly StateKey RoomNameKey = new("m.room.name", "");
    private static readonly StateKey CanonicalAliasKey = new("m.room.canonical_alias", "");

    /// <summary>Whether the user's membership at a stream position was a join (a room whose own member events changed since is new otherwise).</summary>
    internal async Task<bool> WasJoinedAsync(RoomSnapshot room, string userId, long position, CancellationToken ct) =>
        (await StateAtAsync(room.RoomId, position, ct)).TryGetValue(StateKey.Member(userId), out var memberId)
        && (await events.GetAsync(memberId, room.Version, ct))?.Membership == "join";

    /// <summary>
    /// Users whose presence an incremental sync gives even unchanged (as Synapse): the members of rooms the user just
    /// joined, and those whose join shows in a timeline of this sync.
    /// </summary>
    private static HashSet<string> NewlySharing(string userId, List<JsonArray> timelines, List<(RoomSnapshot Room, bool FullState, bool NewlyJoined)> rooms)
    {
        var users = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (room, _, newlyJoined) in rooms)
            if (newlyJoined)
                users.UnionWith(room.JoinedMembers);
        foreach (var timeline in timelines)
            foreach (var e in timeline.OfType<JsonObject>())
                if (e["type"]?.GetValue<string>() == "m.room.member" && e["content"]?["membership"]?.GetValue<string>() == "join"
                    && e["state_key"]?.GetValue<string>() is { } member)
                    users.Add(member);
        users.Remove(userId);
        return users;
    }
}
