using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Spec: sending events and state, reading events, state and members, redactions.</summary>
public sealed class EventEndpoints(
    Authenticator authenticator, JsonBody json, EventSpine spine, RoomReader reader, Database db, RoomStore rooms, Config.HomeserverConfig config,
    Relations.RelationBundler bundler, Relations.RelationStore relations, AccountData.InvitePermissions invitePermissions) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("PUT", "rooms/{roomId}/send/{eventType}/{txnId}", SendAsync);
        // Without a transaction ID (not idempotent): Synapse serves these, older clients and SyTest's fixtures use them.
        app.MapV3("POST", "rooms/{roomId}/send/{eventType}", SendAsync);
        app.MapV3("PUT", "rooms/{roomId}/state/{eventType}", PutStateAsync);
        app.MapV3("PUT", "rooms/{roomId}/state/{eventType}/{*stateKey}", PutStateAsync);
        app.MapV3("GET", "rooms/{roomId}/state", GetAllStateAsync);
        app.MapV3("GET", "rooms/{roomId}/state/{eventType}", GetStateAsync);
        app.MapV3("GET", "rooms/{roomId}/state/{eventType}/{*stateKey}", GetStateAsync);
        app.MapV3("GET", "rooms/{roomId}/event/{eventId}", GetEventAsync);
        app.MapV3("PUT", "rooms/{roomId}/redact/{eventId}/{txnId}", RedactAsync);
        app.MapV3("POST", "rooms/{roomId}/redact/{eventId}", RedactAsync);
        app.MapV3("GET", "rooms/{roomId}/members", MembersAsync);
        app.MapV3("GET", "rooms/{roomId}/joined_members", JoinedMembersAsync);
    }

    private async Task SendAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var type = EventType(context);
        if (type != "m.room.redaction")
            requester.EnsureNotSuspended();
        var content = RoomCreation.ToCanonicalObject(await json.ReadObjectAsync(context));
        await CheckDuplicateAnnotationAsync(requester.UserId.Value, type, content, context.RequestAborted);
        if (requester.IsShadowBanned)
        {
            await AnswerUnsentAsync(context);
            return;
        }
        var sent = await spine.SendAsync(roomId, new NewEvent(type, null, requester.UserId.Value, content)
        {
            Transaction = TransactionOf(context, requester),
            OriginServerTs = AppServiceTimestamp(context, requester),
        }, context.RequestAborted);
        await AnswerSendAsync(context, sent, requester.DeviceId);
    }

    /// <summary>The client transaction of a PUT; the legacy POST forms have none.</summary>
    private static (string DeviceId, string TxnId)? TransactionOf(HttpContext context, Requester requester) =>
        context.Request.RouteValues.ContainsKey("txnId") ? (requester.DeviceId, context.Route("txnId")) : null;

    /// <summary>Answers a send with its event ID, and only then wakes the sender's own syncs (see EventSpine.AnnounceToSender).</summary>
    private async Task AnswerSendAsync(HttpContext context, PersistedEvent sent, string deviceId)
    {
        try
        {
            await context.WriteJsonAsync(new JsonObject { ["event_id"] = sent.Pdu.EventId });
            await context.Response.CompleteAsync();
        }
        finally
        {
            spine.AnnounceToSender(sent, deviceId);
        }
    }

    /// <summary>A shadow-banned user's send: answered as if made (see <see cref="Requester.FakeEventId"/>).</summary>
    private static Task AnswerUnsentAsync(HttpContext context) => context.WriteJsonAsync(new JsonObject { ["event_id"] = Requester.FakeEventId() });

    /// <summary>Spec: a user may annotate an event with one key once (per event type), unless the first was redacted.</summary>
    private async Task CheckDuplicateAnnotationAsync(string sender, string type, JsonObject content, CancellationToken ct)
    {
        if (Relations.RelationsWriter.Parse(new JsonObject { ["content"] = content.DeepClone() }) is not { RelType: "m.annotation", Key: { } key } relation)
            return;
        if (await db.ReadAsync(s => relations.HasAnnotationAsync(s, relation.ParentId, sender, type, key), ct))
            throw new MatrixException(400, "M_DUPLICATE_ANNOTATION", "You have already sent this annotation.");
    }

    private async Task PutStateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var type = EventType(context);
        var stateKey = StateKeyOf(context);
        var content = RoomCreation.ToCanonicalObject(await json.ReadObjectAsync(context));
        // A suspended account may still leave (its own membership); no other state.
        if (!(type == "m.room.member" && stateKey == requester.UserId.Value && content["membership"]?.GetValue<string>() == "leave"))
            requester.EnsureNotSuspended();
        if (type == "m.room.canonical_alias")
            await CheckCanonicalAliasAsync(roomId, content, context.RequestAborted);
        if (type == "m.room.member" && content["membership"]?.GetValue<string>() == "invite")
            await invitePermissions.CheckAsync(stateKey, context.RequestAborted);
        // A shadow-banned user's own joins and leaves happen; whatever else they set reaches nobody (as Synapse).
        if (requester.IsShadowBanned && !(type == "m.room.member" && stateKey == requester.UserId.Value))
        {
            await AnswerUnsentAsync(context);
            return;
        }
        if (type != "m.room.member" && await UnchangedStateAsync(roomId, type, stateKey, requester.UserId.Value, content, context.RequestAborted) is { } current)
        {
            await context.WriteJsonAsync(new JsonObject { ["event_id"] = current });
            return;
        }
        var sent = await spine.SendAsync(roomId, new NewEvent(type, stateKey, requester.UserId.Value, content)
        {
            OriginServerTs = AppServiceTimestamp(context, requester),
        }, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["event_id"] = sent.Pdu.EventId });
    }

    /// <summary>
    /// As Synapse does, a joined member setting state it set last to the same content makes no new event: the current
    /// one's ID is the answer (clients re-send settings they did not change).
    /// </summary>
    private async Task<string?> UnchangedStateAsync(string roomId, string type, string stateKey, string sender, JsonObject content, CancellationToken ct) =>
        await spine.GetRoomAsync(roomId, ct) is { } room && room.JoinedMembers.Contains(sender)
        && await spine.GetStateEventAsync(room, new StateKey(type, stateKey), ct) is { } current
        && current.Sender == sender && JsonNode.DeepEquals(current.Content, content)
            ? current.EventId
            : null;

    /// <summary>Timestamp massaging: an application service may date its events with <c>ts</c>; others' <c>ts</c> is ignored.</summary>
    private static long? AppServiceTimestamp(HttpContext context, Requester requester)
    {
        if (requester.AppService is null || context.Query("ts") is not { Length: > 0 } ts)
            return null;
        return long.TryParse(ts, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            && value <= Federation.Json.CanonicalJson.MaxSafeInteger
            ? value
            : throw MatrixException.InvalidParam("ts must be a timestamp in milliseconds.");
    }

    private async Task GetAllStateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (room, state) = await reader.VisibleStateAsync(RoomEndpoints.RoomIdFromRoute(context), requester.UserId.Value, context.RequestAborted);
        var array = new JsonArray();
        foreach (var eventId in state.Values)
            array.Add(await reader.StateEventToClientAsync(room, eventId, context.RequestAborted));
        await context.WriteJsonAsync(array);
    }

    private async Task GetStateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (room, state) = await reader.VisibleStateAsync(RoomEndpoints.RoomIdFromRoute(context), requester.UserId.Value, context.RequestAborted);
        var key = new StateKey(EventType(context), StateKeyOf(context));
        if (!state.TryGetValue(key, out var eventId))
            throw MatrixException.NotFound("No such state event.");
        var evt = await reader.StateEventToClientAsync(room, eventId, context.RequestAborted);
        await context.WriteJsonAsync(context.Query("format") == "event" ? evt : evt["content"]!.DeepClone());
    }

    private async Task GetEventAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var eventId = context.Route("eventId");
        if (!eventId.StartsWith('$'))
            throw MatrixException.InvalidParam("Invalid event ID.");
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted);
        var joined = await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) == "join";
        if (row is null || row.RoomId != roomId || !await reader.CanSeeAsync(room, row, requester.UserId.Value, joined, context.RequestAborted))
            throw MatrixException.NotFound("Event not found.");
        var served = new JsonArray(await reader.ToClientAsync(room, row, context.RequestAborted,
            erased: await reader.IsErasedForAsync(room, row, requester.UserId.Value, context.RequestAborted)));
        await bundler.AddAsync(room, served, requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(served[0]!.DeepClone());
    }

    private async Task RedactAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var eventId = context.Route("eventId");
        if (!eventId.StartsWith('$'))
            throw MatrixException.InvalidParam("Invalid event ID.");
        var body = await json.ReadObjectAsync(context, optional: true);
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        var target = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted)
            ?? throw MatrixException.NotFound("Event not found.");
        if (target.RoomId != roomId)
            throw MatrixException.InvalidParam("The event is in another room: a redaction names an event of its own room.");
        // Redacting another user's event needs the redact level (the auth rules only check the m.room.redaction level).
        if (target.Sender != requester.UserId.Value)
        {
            requester.EnsureNotSuspended();
            var powers = new Federation.Auth.RoomPowers(
                (await spine.GetStateEventAsync(room, StateKey.Create, context.RequestAborted))!,
                await spine.GetStateEventAsync(room, StateKey.PowerLevels, context.RequestAborted));
            if (powers.UserLevel(requester.UserId.Value) < powers.Levels.Redact)
                throw MatrixException.Forbidden("You may not redact other users' events.");
        }
        if (requester.IsShadowBanned)
        {
            await AnswerUnsentAsync(context);
            return;
        }
        var content = new JsonObject();
        if (body.OptionalString("reason") is { } reason)
            content["reason"] = reason;
        var sent = await spine.SendAsync(roomId, new NewEvent("m.room.redaction", null, requester.UserId.Value, content)
        {
            Redacts = eventId,
            Transaction = TransactionOf(context, requester),
        }, context.RequestAborted);
        await AnswerSendAsync(context, sent, requester.DeviceId);
    }

    private async Task MembersAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (room, state) = await reader.VisibleStateAsync(RoomEndpoints.RoomIdFromRoute(context), requester.UserId.Value, context.RequestAborted);
        if (context.Query("at") is { Length: > 0 } at)
        {
            // The membership at a sync/pagination token, never later than what the user may see.
            var (stateAt, position) = await reader.StateAtPositionAsync(room.RoomId, Sync.SyncToken.Parse(at, "at").Events, context.RequestAborted);
            var memberId = state.GetValueOrDefault(StateKey.Member(requester.UserId.Value));
            var visibleUntil = memberId is null ? null : await db.ReadAsync(s => rooms.GetEventAsync(s, memberId), context.RequestAborted);
            if (visibleUntil is null || await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) == "join"
                || position <= visibleUntil.StreamOrdering)
                state = stateAt;
        }
        var only = context.Query("membership");
        var not = context.Query("not_membership");
        var chunk = new JsonArray();
        foreach (var (key, eventId) in state.Where(e => e.Key.Type == "m.room.member"))
        {
            var evt = await reader.StateEventToClientAsync(room, eventId, context.RequestAborted);
            var membership = evt["content"]?["membership"]?.GetValue<string>();
            if ((only.Length > 0 && membership != only) || (not.Length > 0 && membership == not))
                continue;
            chunk.Add(evt);
        }
        await context.WriteJsonAsync(new JsonObject { ["chunk"] = chunk });
    }

    private async Task JoinedMembersAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        if (await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) != "join")
            throw MatrixException.Forbidden("You are not in this room.");
        var joined = new JsonObject();
        foreach (var (key, eventId) in room.State.Where(e => e.Key.Type == "m.room.member"))
        {
            var member = await spine.GetStateEventAsync(room, key, context.RequestAborted);
            if (member?.Membership != "join")
                continue;
            // Both keys always, null when unset, as Synapse answers (clients and SyTest expect them).
            joined[key.Key] = new JsonObject
            {
                ["display_name"] = (member.Content["displayname"] as JsonValue)?.DeepClone(),
                ["avatar_url"] = (member.Content["avatar_url"] as JsonValue)?.DeepClone(),
            };
        }
        await context.WriteJsonAsync(new JsonObject { ["joined"] = joined });
    }

    /// <summary>Every local alias a canonical alias event names must point to this room (400 M_BAD_ALIAS otherwise).</summary>
    private async Task CheckCanonicalAliasAsync(string roomId, JsonObject content, CancellationToken ct)
    {
        var aliases = new List<string>();
        if (content.TryGetPropertyValue("alias", out var alias) && alias is not null)
            aliases.Add(alias is JsonValue value && value.TryGetValue<string>(out var text) ? text : throw MatrixException.InvalidParam("alias must be a string."));
        if (content.TryGetPropertyValue("alt_aliases", out var alternatives) && alternatives is not null)
        {
            if (alternatives is not JsonArray array || array.Any(a => a is not JsonValue v || !v.TryGetValue<string>(out _)))
                throw MatrixException.InvalidParam("alt_aliases must be an array of strings.");
            aliases.AddRange(array.Select(a => a!.GetValue<string>()));
        }
        foreach (var entry in aliases)
        {
            if (!RoomDirectory.RoomAlias.IsValid(entry))
                throw MatrixException.InvalidParam($"'{entry}' is not a valid room alias.");
            if (RoomDirectory.RoomAlias.ServerOf(entry) == config.ServerName
                && await db.ReadAsync(s => rooms.ResolveAliasAsync(s, entry), ct) != roomId)
                throw new MatrixException(400, "M_BAD_ALIAS", $"The alias {entry} does not point to this room.");
        }
    }

    private static string EventType(HttpContext context)
    {
        var type = context.Route("eventType");
        if (type.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(type) > 255)
            throw MatrixException.InvalidParam("Event type must be 1 to 255 bytes.");
        return type;
    }

    private static string StateKeyOf(HttpContext context)
    {
        var stateKey = context.Request.RouteValues["stateKey"] as string ?? "";
        if (System.Text.Encoding.UTF8.GetByteCount(stateKey) > 255)
            throw MatrixException.InvalidParam("State key must be at most 255 bytes.");
        return JsonFields.WithoutNul(stateKey, "stateKey");
    }
}
