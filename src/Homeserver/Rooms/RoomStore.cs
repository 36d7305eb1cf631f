using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

public sealed record RoomRow(string RoomId, string RoomVersion, string Creator, long IsPublic, long CreatedTs);

/// <param name="Rejected">1 when the auth rules rejected it: kept for the record, never served, used as state or cited.</param>
/// <param name="SoftFailed">1 when its history allows it but the current state does not: kept, never served, not cited.</param>
/// <param name="Outlier">1 for events known only as state or auth chain (e.g. from a remote join), not part of the timeline.</param>
public sealed record EventRow(
    long StreamOrdering, string EventId, string RoomId, string Type, string? StateKey, string Sender, long Depth,
    long OriginServerTs, long StateGroup, string? RedactedBy, string Json, long Rejected = 0, long SoftFailed = 0, long Outlier = 0)
{
    /// <summary>
    /// The event itself, on a row this process wrote and keeps in memory (<see cref="RecentRoomRows"/>), which holds
    /// the event instead of its JSON text (<see cref="Json"/> is then empty): the event cache mostly holds it too.
    /// </summary>
    public Federation.Events.Pdu? Event { get; init; }
}

public sealed record CurrentStateRow(string Type, string StateKey, string EventId, string? Membership);

/// <summary>A forward extremity: an event with no successor yet, which the next local event cites as a prev event.</summary>
public sealed record Extremity(string EventId, long Depth, long StateGroup);

public sealed record MembershipRow(string RoomId, string Membership, string EventId);

/// <summary>A membership with the stream position and sender of its member event.</summary>
public sealed record MembershipEventRow(string RoomId, string Membership, string EventId, long StreamOrdering, string Sender);

/// <summary>
/// SQL for rooms, events, current state, room heads, transaction IDs and stream positions. Event rows written are also
/// recorded in the <see cref="RecentEventIndex"/>.
/// </summary>
public sealed class RoomStore(RecentEventIndex recentEvents, RecentTransactionIds recentTxnIds, MembershipCache membershipCache, RecentRoomRows recentRows,
    FollowedRoomRows followedRows)
{
    private const string EventColumns =
        "stream_ordering, event_id, room_id, type, state_key, sender, depth, origin_server_ts, state_group, redacted_by, json, rejected, soft_failed, outlier";
    /// <summary>Timeline events clients may be shown: not rejected, not soft-failed, not outliers.</summary>
    private const string Served = "rejected = 0 AND soft_failed = 0 AND outlier = 0";

    /// <summary>
    /// One room's events, for reading a range of them from the (room_id, stream_ordering) index. Prepared statements get
    /// plans made without their values; with only the equality, such a plan reckons the room a large share of a database
    /// with few rooms and walks the stream ordering (primary key) index instead, through every other room's events back
    /// to the room's last. The redundant bounds make the room's index look selective; the index scan drops them as
    /// implied by the equality, so both ends of the stream range still bound it (row comparisons, which PostgreSQL 15
    /// does not use to end a scan, read the room's whole history).
    /// </summary>
    private const string InRoom = "room_id = @roomId AND room_id >= @roomId AND room_id <= @roomId";
    /// <summary>One user's member events, pinned like <see cref="InRoom"/> for the (state_key, type, stream_ordering) index.</summary>
    private const string MemberEventsOf = "state_key = @userId AND state_key >= @userId AND state_key <= @userId AND type = 'm.room.member'";

    public Task InsertRoomAsync(DbSession s, RoomRow room) => s.ExecuteAsync(
        "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (@RoomId, @RoomVersion, @Creator, @IsPublic, @CreatedTs)", room);

    public Task<RoomRow?> GetRoomAsync(DbSession s, string roomId) =>
        s.QuerySingleOrDefaultAsync<RoomRow>("SELECT room_id, room_version, creator, is_public, created_ts FROM rooms WHERE room_id = @roomId", new { roomId });

    public Task SetPublicAsync(DbSession s, string roomId, bool isPublic) =>
        s.ExecuteAsync("UPDATE rooms SET is_public = @value WHERE room_id = @roomId", new { roomId, value = isPublic ? 1L : 0L });

    /// <param name="pdu">the event the row stores, kept in memory with the row (not its text) when given</param>
    public Task InsertEventAsync(DbSession s, EventRow row, Federation.Events.Pdu? pdu = null)
    {
        recentEvents.Record(row.StreamOrdering, row.RoomId, row.Type);
        recentRows.Record(s, row, pdu);
        return s.DeferAsync(
            $"INSERT INTO events ({EventColumns}) VALUES (@StreamOrdering, @EventId, @RoomId, @Type, @StateKey, @Sender, @Depth, @OriginServerTs, @StateGroup, @RedactedBy, @Json, @Rejected, @SoftFailed, @Outlier)", row);
    }

    public Task<EventRow?> GetEventAsync(DbSession s, string eventId) =>
        s.QuerySingleOrDefaultAsync<EventRow>($"SELECT {EventColumns} FROM events WHERE event_id = @eventId", new { eventId });

    public async Task<List<EventRow>> GetEventsAsync(DbSession s, IReadOnlyCollection<string> eventIds)
    {
        if (eventIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<EventRow>($"SELECT {EventColumns} FROM events WHERE event_id IN {SqlList.In(args, "id", eventIds)}", args)).ToList();
    }

    /// <summary>The timeline event closest to a time: the first at or after it (forwards) or the last at or before it (backwards).</summary>
    public Task<EventRow?> EventNearTimeAsync(DbSession s, string roomId, long ts, bool forwards) => s.QuerySingleOrDefaultAsync<EventRow>(
        forwards
            ? $"SELECT {EventColumns} FROM events WHERE room_id = @roomId AND {Served} AND origin_server_ts >= @ts ORDER BY origin_server_ts, stream_ordering LIMIT 1"
            : $"SELECT {EventColumns} FROM events WHERE room_id = @roomId AND {Served} AND origin_server_ts <= @ts ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1",
        new { roomId, ts });

    /// <summary>Turns a stored outlier into a backfilled timeline event at the given (negative) position.</summary>
    public Task PromoteOutlierAsync(DbSession s, string eventId, long streamOrdering, long stateGroup) => s.ExecuteAsync(
        "UPDATE events SET outlier = 0, stream_ordering = @streamOrdering, state_group = @stateGroup WHERE event_id = @eventId AND outlier = 1",
        new { eventId, streamOrdering, stateGroup });

    /// <summary>Marks an event redacted; only an event of the redaction's own room (one elsewhere is not its to redact).</summary>
    public Task MarkRedactedAsync(DbSession s, string eventId, string redactionId, string roomId)
    {
        recentRows.Redacted(s, roomId, eventId, redactionId);
        return s.DeferAsync("UPDATE events SET redacted_by = @redactionId WHERE event_id = @eventId AND room_id = @roomId AND redacted_by IS NULL",
            new { eventId, redactionId, roomId });
    }

    /// <summary>Room events with <paramref name="after"/> &lt; stream ordering &lt;= <paramref name="upTo"/>, newest first when <paramref name="newestFirst"/>.</summary>
    public SqlRead<EventRow, List<EventRow>> RoomEvents(string roomId, long after, long upTo, int limit, bool newestFirst) => SqlReads.Rows<EventRow>(
        $"SELECT {EventColumns} FROM events WHERE {InRoom} AND stream_ordering > @after AND stream_ordering <= @upTo AND {Served} " +
        $"ORDER BY stream_ordering {(newestFirst ? "DESC" : "ASC")} LIMIT @limit",
        new { roomId, after, upTo, limit = (long)limit });

    /// <summary>
    /// <see cref="RoomEvents"/> newest first from memory, when it holds the whole window (a sync woken by a new event):
    /// the rows this process wrote lately, or on a worker those it read lately (<see cref="RecentPage"/>); false otherwise.
    /// </summary>
    public bool TryRecentRoomEvents(string roomId, long after, long upTo, int limit, out List<EventRow> rows) =>
        recentRows.TryPage(roomId, after, upTo, limit, out rows) || followedRows.TryPage(roomId, after, upTo, limit, out rows);

    /// <summary><see cref="RoomEvents"/> newest first, kept for the syncs the same events wake next on a worker.</summary>
    public SqlRead<EventRow, List<EventRow>> RecentPage(string roomId, long after, long upTo, int limit)
    {
        var read = RoomEvents(roomId, after, upTo, limit, newestFirst: true);
        var generation = followedRows.Generation;
        return new SqlRead<EventRow, List<EventRow>>(read.Sql, read.Args, rows =>
        {
            var page = rows.ToList();
            followedRows.Remember(roomId, after, upTo, limit, page, generation);
            return page;
        });
    }

    /// <summary>Some or all of the room's events were deleted: the recent rows kept of it go.</summary>
    public void ForgetRecentRows(string roomId)
    {
        recentRows.ForgetRoom(roomId);
        followedRows.ForgetRoom(roomId);
    }

    public Task<List<EventRow>> RoomEventsAsync(DbSession s, string roomId, long after, long upTo, int limit, bool newestFirst) =>
        s.QueryAsync(RoomEvents(roomId, after, upTo, limit, newestFirst));

    /// <summary>The room's latest event at or before a stream position (the state at that position is its state group).</summary>
    public Task<EventRow?> LastEventAtAsync(DbSession s, string roomId, long position) => s.QuerySingleOrDefaultAsync<EventRow>(
        $"SELECT {EventColumns} FROM events WHERE {InRoom} AND stream_ordering <= @position AND {Served} " +
        "ORDER BY stream_ordering DESC LIMIT 1",
        new { roomId, position });

    /// <summary>The client transaction IDs a device used for some of its events, when the latest sent ones know them all.</summary>
    public bool TryRecentTxnIds(string userId, string deviceId, IReadOnlyCollection<string> eventIds, out Dictionary<string, string> txnIds) =>
        recentTxnIds.TryGet(userId, deviceId, eventIds, out txnIds);

    /// <summary>The client transaction IDs a device used for some of its events.</summary>
    public async Task<Dictionary<string, string>> TxnIdsAsync(DbSession s, string userId, string deviceId, IReadOnlyCollection<string> eventIds)
    {
        if (eventIds.Count == 0)
            return [];
        var args = new SqlArgs(new { userId, deviceId });
        var rows = await s.QueryAsync<(string EventId, string TxnId)>(
            $"SELECT event_id, txn_id FROM event_txn_ids WHERE user_id = @userId AND device_id = @deviceId AND event_id IN {SqlList.In(args, "id", eventIds)}", args);
        return rows.ToDictionary(r => r.EventId, r => r.TxnId);
    }

    public async Task<List<CurrentStateRow>> CurrentStateAsync(DbSession s, string roomId) =>
        (await s.QueryAsync<CurrentStateRow>("SELECT type, state_key, event_id, membership FROM current_state WHERE room_id = @roomId", new { roomId })).ToList();

    public Task<string?> CurrentStateEventIdAsync(DbSession s, string roomId, string type, string stateKey) => s.QuerySingleOrDefaultAsync<string?>(
        "SELECT event_id FROM current_state WHERE room_id = @roomId AND type = @type AND state_key = @stateKey", new { roomId, type, stateKey });

    public Task SetCurrentStateAsync(DbSession s, string roomId, string type, string stateKey, string eventId, string? membership)
    {
        if (type == "m.room.member")
            membershipCache.Changed(s, stateKey);
        return s.DeferAsync("""
        INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (@roomId, @type, @stateKey, @eventId, @membership)
        ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership
        """, new { roomId, type, stateKey, eventId, membership });
    }

    public async Task<List<Extremity>> ExtremitiesAsync(DbSession s, string roomId) =>
        (await s.QueryAsync<Extremity>("SELECT event_id, depth, state_group FROM forward_extremities WHERE room_id = @roomId", new { roomId })).ToList();

    /// <summary>Replaces the cited prev events with the new event as forward extremities.</summary>
    public async Task AdvanceExtremitiesAsync(DbSession s, string roomId, IReadOnlyCollection<string> replaced, Extremity added)
    {
        if (replaced.Count > 0)
        {
            var args = new SqlArgs();
            args.Add("roomId", roomId);
            await s.DeferAsync($"DELETE FROM forward_extremities WHERE room_id = @roomId AND event_id IN {SqlList.In(args, "e", replaced)}", args);
        }
        await s.DeferAsync("INSERT INTO forward_extremities (room_id, event_id, depth, state_group) VALUES (@roomId, @EventId, @Depth, @StateGroup)",
            new { roomId, added.EventId, added.Depth, added.StateGroup });
    }

    public Task DeleteCurrentStateAsync(DbSession s, string roomId, string type, string stateKey)
    {
        if (type == "m.room.member")
            membershipCache.Changed(s, stateKey);
        return s.DeferAsync("DELETE FROM current_state WHERE room_id = @roomId AND type = @type AND state_key = @stateKey", new { roomId, type, stateKey });
    }

    /// <summary>Rooms with events stored in the window.</summary>
    public SqlRead<string, List<string>> RoomsWithEvents(long after, long upTo) =>
        SqlReads.Rows<string>("SELECT DISTINCT room_id FROM events WHERE stream_ordering > @after AND stream_ordering <= @upTo", new { after, upTo });

    /// <summary>The user's membership in every room they have a member event in (from current state).</summary>
    public SqlRead<MembershipRow, List<MembershipRow>> Memberships(string userId) => SqlReads.Rows<MembershipRow>(
        "SELECT room_id, membership, event_id FROM current_state WHERE state_key = @userId AND type = 'm.room.member'", new { userId });

    public Task<List<MembershipRow>> MembershipsAsync(DbSession s, string userId) => s.QueryAsync(Memberships(userId));

    /// <summary>The user's memberships other than joins, with where each member event is in the stream and who sent it.</summary>
    public SqlRead<MembershipEventRow, List<MembershipEventRow>> MembershipEventsOtherThanJoins(string userId) => SqlReads.Rows<MembershipEventRow>(
        "SELECT c.room_id, c.membership, c.event_id, e.stream_ordering, e.sender FROM current_state c JOIN events e ON e.event_id = c.event_id " +
        "WHERE c.state_key = @userId AND c.type = 'm.room.member' AND c.membership <> 'join'", new { userId });

    public async Task<List<string>> JoinedMembersAsync(DbSession s, string roomId) =>
        (await s.QueryAsync<string>(
            "SELECT state_key FROM current_state WHERE room_id = @roomId AND type = 'm.room.member' AND membership = 'join'", new { roomId })).ToList();

    /// <summary>The user's member events after a stream position (joins, leaves, invites since a sync token).</summary>
    public SqlRead<EventRow, List<EventRow>> MembershipEventsSince(string userId, long after, long upTo) => SqlReads.Rows<EventRow>(
        $"SELECT {EventColumns} FROM events WHERE {MemberEventsOf} AND stream_ordering > @after AND stream_ordering <= @upTo AND {Served} " +
        "ORDER BY stream_ordering",
        new { userId, after, upTo });

    /// <summary>
    /// The users whose member events fall in a stream window in the rooms <paramref name="userId"/> is joined to or
    /// whose own membership changed in it (who joined or left beside the user).
    /// </summary>
    public SqlRead<string, HashSet<string>> MembersChangedBeside(string userId, long after, long upTo) => new($"""
        SELECT DISTINCT state_key FROM events WHERE type = 'm.room.member' AND stream_ordering > @after AND stream_ordering <= @upTo AND {Served}
        AND (room_id IN (SELECT room_id FROM current_state WHERE state_key = @userId AND type = 'm.room.member' AND membership = 'join')
             OR room_id IN (SELECT room_id FROM events WHERE {MemberEventsOf} AND stream_ordering > @after AND stream_ordering <= @upTo))
        """, new { userId, after, upTo }, rows => rows.ToHashSet(StringComparer.Ordinal));

    public Task<string?> TxnEventAsync(DbSession s, string userId, string deviceId, string txnId) => s.QuerySingleOrDefaultAsync<string>(
        "SELECT event_id FROM event_txn_ids WHERE user_id = @userId AND device_id = @deviceId AND txn_id = @txnId", new { userId, deviceId, txnId });

    public Task InsertTxnAsync(DbSession s, string userId, string deviceId, string txnId, string eventId, long now)
    {
        s.OnCompleted(committed =>
        {
            if (committed)
                recentTxnIds.Add(eventId, userId, deviceId, txnId);
        });
        return s.DeferAsync(
            "INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, created_ts) VALUES (@userId, @deviceId, @txnId, @eventId, @now)",
            new { userId, deviceId, txnId, eventId, now });
    }

    /// <summary>Maps an alias to a room; false when the alias is taken.</summary>
    public async Task<bool> TryCreateAliasAsync(DbSession s, string alias, string roomId, string creator) =>
        await s.ExecuteAsync("INSERT INTO room_aliases (alias, room_id, creator) VALUES (@alias, @roomId, @creator) ON CONFLICT DO NOTHING",
            new { alias, roomId, creator }) == 1;

    public Task<string?> ResolveAliasAsync(DbSession s, string alias) =>
        s.QuerySingleOrDefaultAsync<string>("SELECT room_id FROM room_aliases WHERE alias = @alias", new { alias });

    public sealed record AliasRow(string Alias, string RoomId, string Creator);

    public Task<AliasRow?> GetAliasAsync(DbSession s, string alias) =>
        s.QuerySingleOrDefaultAsync<AliasRow>("SELECT alias, room_id, creator FROM room_aliases WHERE alias = @alias", new { alias });

    public Task DeleteAliasAsync(DbSession s, string alias) => s.ExecuteAsync("DELETE FROM room_aliases WHERE alias = @alias", new { alias });

    public Task MoveAliasesAsync(DbSession s, string fromRoomId, string toRoomId) =>
        s.ExecuteAsync("UPDATE room_aliases SET room_id = @toRoomId WHERE room_id = @fromRoomId", new { fromRoomId, toRoomId });

    public async Task<List<string>> AliasesOfAsync(DbSession s, string roomId) =>
        (await s.QueryAsync<string>("SELECT alias FROM room_aliases WHERE room_id = @roomId ORDER BY alias", new { roomId })).ToList();

    public async Task<List<string>> AllRoomIdsAsync(DbSession s) =>
        (await s.QueryAsync<string>("SELECT room_id FROM rooms ORDER BY room_id")).ToList();

    /// <summary>
    /// The rooms published in the main directory, in one application service network's list (<paramref name="network"/>),
    /// or in any list (<paramref name="allNetworks"/>).
    /// </summary>
    public async Task<List<string>> PublicRoomsAsync(DbSession s, RoomDirectory.AppServiceNetwork? network, bool allNetworks)
    {
        var sql = allNetworks ? "SELECT room_id FROM rooms WHERE is_public = 1 UNION SELECT room_id FROM appservice_room_list"
            : network is not null ? "SELECT room_id FROM appservice_room_list WHERE appservice_id = @AppServiceId AND network_id = @NetworkId"
            : "SELECT room_id FROM rooms WHERE is_public = 1";
        return (await s.QueryAsync<string>(sql + " ORDER BY room_id", network)).ToList();
    }

    public Task SetPublishedInNetworkAsync(DbSession s, RoomDirectory.AppServiceNetwork network, string roomId, bool published) => s.ExecuteAsync(
        published
            ? "INSERT INTO appservice_room_list (appservice_id, network_id, room_id) VALUES (@AppServiceId, @NetworkId, @roomId) ON CONFLICT DO NOTHING"
            : "DELETE FROM appservice_room_list WHERE appservice_id = @AppServiceId AND network_id = @NetworkId AND room_id = @roomId",
        new { network.AppServiceId, network.NetworkId, roomId });

    public Task ForgetAsync(DbSession s, string userId, string roomId)
    {
        membershipCache.Changed(s, userId);
        return s.ExecuteAsync("INSERT INTO forgotten_rooms (user_id, room_id) VALUES (@userId, @roomId) ON CONFLICT DO NOTHING", new { userId, roomId });
    }

    public Task UnforgetAsync(DbSession s, string userId, string roomId)
    {
        membershipCache.Changed(s, userId);
        return s.ExecuteAsync("DELETE FROM forgotten_rooms WHERE user_id = @userId AND room_id = @roomId", new { userId, roomId });
    }

    private static SqlRead<string, HashSet<string>> ForgottenRooms(string userId) =>
        new("SELECT room_id FROM forgotten_rooms WHERE user_id = @userId", new { userId }, rows => rows.ToHashSet());

    /// <summary>The user's memberships, forgotten rooms and remote invites as they are now: from memory, or by reads for the caller's batch.</summary>
    public CachedLookup<string, UserMemberships> UserMemberships(string userId) => new(membershipCache.Users, userId, () =>
    {
        var (memberships, forgotten, remoteInvites) = (Memberships(userId), ForgottenRooms(userId), RemoteInviteStore.ForUser(userId));
        return ([memberships, forgotten, remoteInvites], () => new UserMemberships(memberships.Result, forgotten.Result, remoteInvites.Result));
    });

    /// <summary>The user's memberships as they are now (from memory when known).</summary>
    public async Task<List<MembershipRow>> CurrentMembershipsAsync(Database db, string userId, CancellationToken ct)
    {
        var lookup = UserMemberships(userId);
        await db.ReadAllAsync(lookup.Reads, ct);
        return lookup.Result.Memberships;
    }
}
