using System.Text.Json.Nodes;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Receipts;

/// <summary>Spec: typing notifications, receipts (public, private, threaded) and read markers.</summary>
public sealed class ReceiptEndpoints(
    Authenticator authenticator, JsonBody json, RoomReader reader, Database db, RoomStore rooms, ReceiptService receiptService,
    AccountDataStore accountData, StreamPositions streams, TypingService typing, SyncNotifier notifier, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("PUT", "rooms/{roomId}/typing/{userId}", TypingAsync);
        app.MapV3("POST", "rooms/{roomId}/receipt/{receiptType}/{eventId}", ReceiptAsync);
        app.MapV3("POST", "rooms/{roomId}/read_markers", ReadMarkersAsync);
    }

    private async Task TypingAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only set your own typing state.");
        var body = await json.ReadObjectAsync(context);
        var isTyping = body.OptionalBool("typing") ?? throw MatrixException.MissingParam("typing");
        await RequireJoinedAsync(roomId, requester.UserId.Value, context.RequestAborted);
        var timeout = (int)Math.Clamp(body.OptionalInteger("timeout") ?? 30_000, 0, TypingService.MaxTimeoutMs);
        if (!requester.IsShadowBanned)
            await typing.SetAsync(roomId, requester.UserId.Value, isTyping, timeout, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task ReceiptAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var type = context.Route("receiptType");
        if (type is not ("m.read" or "m.read.private" or "m.fully_read"))
            throw MatrixException.InvalidParam($"Unknown receipt type '{type}'.");
        var body = await json.ReadObjectAsync(context, optional: true);
        var threadId = body.OptionalString("thread_id") ?? "";
        if (type == "m.fully_read" && threadId.Length > 0)
            throw MatrixException.InvalidParam("m.fully_read cannot be threaded.");
        var eventId = context.Route("eventId");
        await RequireJoinedAsync(roomId, requester.UserId.Value, context.RequestAborted);
        await RequireEventAsync(roomId, eventId, context.RequestAborted);
        if (type == "m.fully_read")
            await SetFullyReadAsync(roomId, requester.UserId.Value, eventId, context.RequestAborted);
        else
            await receiptService.SetAsync(roomId, requester.UserId.Value, type, threadId, eventId, clock.GetUtcNow().ToUnixTimeMilliseconds(), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task ReadMarkersAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context);
        var user = requester.UserId.Value;
        await RequireJoinedAsync(roomId, user, context.RequestAborted);
        var fullyRead = body.OptionalString("m.fully_read");
        var read = body.OptionalString("m.read");
        var readPrivate = body.OptionalString("m.read.private");
        foreach (var eventId in new[] { fullyRead, read, readPrivate }.OfType<string>())
            await RequireEventAsync(roomId, eventId, context.RequestAborted);
        if (fullyRead is not null)
            await SetFullyReadAsync(roomId, user, fullyRead, context.RequestAborted);
        if (read is not null)
            await receiptService.SetAsync(roomId, user, "m.read", "", read, clock.GetUtcNow().ToUnixTimeMilliseconds(), context.RequestAborted);
        if (readPrivate is not null)
            await receiptService.SetAsync(roomId, user, "m.read.private", "", readPrivate, clock.GetUtcNow().ToUnixTimeMilliseconds(), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task SetFullyReadAsync(string roomId, string userId, string eventId, CancellationToken ct)
    {
        var content = new JsonObject { ["event_id"] = eventId }.ToJsonString();
        await db.WriteAsync(async s => await accountData.SetAsync(s, userId, roomId, "m.fully_read", content, await streams.NextAsync(s, "account_data")), ct);
        notifier.Notify([userId]);
    }

    private async Task RequireJoinedAsync(string roomId, string userId, CancellationToken ct)
    {
        var room = await reader.RoomAsync(roomId, ct);
        if (await reader.MembershipAsync(room, userId, ct) != "join")
            throw MatrixException.Forbidden("You are not in this room.");
    }

    private async Task RequireEventAsync(string roomId, string eventId, CancellationToken ct)
    {
        var row = eventId.StartsWith('$') ? await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct) : null;
        if (row is null || row.RoomId != roomId)
            throw MatrixException.NotFound("Event not found in this room.");
    }
}
