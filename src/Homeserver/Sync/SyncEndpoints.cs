using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>Spec: <c>GET /sync</c> and <c>GET /rooms/{roomId}/messages</c>.</summary>
public sealed class SyncEndpoints(
    Authenticator authenticator, SyncService sync, RoomReader reader, Database db, RoomStore rooms, StreamPositions streams,
    Presence.PresenceService presence, RoomMessages messages, SyncFilterCache filters) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "sync", SyncAsync);
        app.MapV3("GET", "rooms/{roomId}/messages", MessagesAsync);
        app.MapV3("GET", "rooms/{roomId}/context/{eventId}", ContextAsync);
    }

    /// <summary>
    /// An event with the events around it and the room state at it, as far as the user may see them; the filter applies to
    /// the events around it and the state, whose members it may lazy-load (only the senders of the events returned).
    /// </summary>
    private async Task ContextAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var eventId = context.Route("eventId");
        var limit = RoomMessages.ContextLimit(context);
        var user = requester.UserId.Value;
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        var membership = await reader.MembershipAsync(room, user, context.RequestAborted);
        // As /messages: someone never in the room is refused outright (403); a member is told only of events they may see.
        if (membership is null && !await reader.IsWorldReadableAsync(room, context.RequestAborted))
            throw MatrixException.Forbidden("You are not in this room.");
        var joined = membership == "join";
        var row = eventId.StartsWith('$') ? await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted) : null;
        if (row is null || row.RoomId != roomId || !await reader.CanSeeAsync(room, row, user, joined, context.RequestAborted))
            throw MatrixException.NotFound("Event not found.");
        await context.WriteJsonAsync(await messages.ContextAsync(room, row, limit, RoomEventFilter(context),
            rows => sync.TimelineAsync(requester, room, rows, joined, context.RequestAborted), context.RequestAborted));
    }

    private async Task SyncAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var since = context.Query("since") is { Length: > 0 } token ? SyncToken.Parse(token, "since") : (SyncToken?)null;
        var timeout = long.TryParse(context.Query("timeout"), out var ms) ? (int)Math.Clamp(ms, 0, SyncService.MaxTimeoutMs) : 0;
        var filter = await FilterAsync(context, requester);
        var fullState = context.Query("full_state") == "true";
        var setPresence = context.Query("set_presence") is { Length: > 0 } p ? p : "online";
        if (!Presence.PresenceService.States.Contains(setPresence))
            throw MatrixException.InvalidParam("set_presence must be online, unavailable or offline.");
        // A sync is activity: it marks the user online (or idle when asked), keeping their status message;
        // set_presence=offline means "do not mark me online", not "mark me offline".
        if (setPresence != "offline")
            await presence.SetAsync(requester.UserId.Value, setPresence, null, keepStatusMsg: true, context.RequestAborted);
        var useStateAfter = context.Query("use_state_after") == "true";
        await context.WriteJsonAsync(await sync.SyncAsync(requester, since, filter, fullState, useStateAfter, timeout, writeOnly: true, context.RequestAborted));
    }

    private async Task<SyncFilter> FilterAsync(HttpContext context, Requester requester)
    {
        var text = context.Query("filter");
        if (text.Length == 0)
            return SyncFilter.Default;
        if (text.TrimStart().StartsWith('{'))
            return SyncFilterCache.Parse(text);
        return await filters.GetAsync(requester.UserId.Value, text, context.RequestAborted) ?? throw MatrixException.NotFound("Filter not found.");
    }

    /// <summary>The <c>filter</c> query parameter of <c>/messages</c> and <c>/context</c> (and the admin API's messages).</summary>
    public static EventFilter RoomEventFilter(HttpContext context)
    {
        var text = context.Query("filter");
        if (text.Length == 0)
            return EventFilter.All;
        if (Encoding.UTF8.GetByteCount(text) > FilterEndpoints.MaxFilterBytes)
            throw MatrixException.TooLarge("Filter is too large.");
        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw MatrixException.BadJson("The filter must be an object.");
            return EventFilter.Parse(document.RootElement.Clone());
        }
        catch (JsonException)
        {
            throw MatrixException.NotJson("The filter is not valid JSON.");
        }
    }

    private async Task MessagesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var user = requester.UserId.Value;
        var room = await reader.RoomAsync(roomId, context.RequestAborted);
        var membership = await reader.MembershipAsync(room, user, context.RequestAborted);
        if (membership is null or "invite" or "knock" && !await reader.IsWorldReadableAsync(room, context.RequestAborted))
            throw MatrixException.Forbidden("You are not in this room.");
        var current = await db.ReadAsync(s => streams.CurrentAsync(s, "events"), context.RequestAborted);
        // A user who left sees history only up to their departure.
        var ceiling = current;
        if (membership is "leave" or "ban")
            ceiling = (await db.ReadAsync(s => rooms.GetEventAsync(s, room.State[Federation.Events.StateKey.Member(user)]), context.RequestAborted))!.StreamOrdering;
        var query = RoomMessages.Parse(context, current, ceiling, RoomEventFilter(context));
        var page = await messages.PageAsync(room, query, context.RequestAborted);
        var chunk = await sync.TimelineAsync(requester, room, page.Rows, membership == "join", context.RequestAborted);
        await context.WriteJsonAsync(await messages.ResponseAsync(room, query, page, chunk, context.RequestAborted));
    }


}
