using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Reporting;

/// <summary>
/// Spec: Reporting content: events, rooms and users reported to the server's administrators, stored for them (and
/// logged). Only what the reporter can see may be reported: others get 404, as for something that does not exist.
/// </summary>
public sealed class ReportEndpoints(
    Authenticator authenticator, JsonBody json, Database db, RoomStore rooms, RoomReader reader, UserStore users, TimeProvider clock,
    ILogger<ReportEndpoints> logger) : IEndpoints
{
    private const int MaxReasonLength = 1000;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "rooms/{roomId}/report/{eventId}", ReportEventAsync);
        app.MapV3("POST", "rooms/{roomId}/report", ReportRoomAsync);
        app.MapV3("POST", "users/{userId}/report", ReportUserAsync);
    }

    private async Task ReportEventAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var eventId = context.Route("eventId");
        var reason = await ReasonAsync(context, required: false);
        var room = await RoomOrNotFoundAsync(roomId, context.RequestAborted);
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted);
        // Spec: the caller must be joined to report an event (not a departed or banned member who could once see it).
        var joined = await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) == "join";
        if (!joined || row is null || row.RoomId != roomId || !await reader.CanSeeAsync(room, row, requester.UserId.Value, joined, context.RequestAborted))
            throw MatrixException.NotFound("Event not found.");
        await StoreAsync(requester, roomId, eventId, null, reason, context);
    }

    private async Task ReportRoomAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var reason = await ReasonAsync(context, required: true);
        await RoomOrNotFoundAsync(roomId, context.RequestAborted);
        await StoreAsync(requester, roomId, null, null, reason, context);
    }

    private async Task ReportUserAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (!UserId.TryParse(context.Route("userId"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        var reason = await ReasonAsync(context, required: true);
        var known = await db.ReadAsync(async s => await users.GetAsync(s, userId.Value) is not null
            || await s.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM current_state WHERE type = 'm.room.member' AND state_key = @user",
                new { user = userId.Value }) > 0, context.RequestAborted);
        if (!known)
            throw MatrixException.NotFound("User not found.");
        await StoreAsync(requester, null, null, userId.Value, reason, context);
    }

    private async Task<string> ReasonAsync(HttpContext context, bool required)
    {
        var body = await json.ReadObjectAsync(context, optional: !required);
        var reason = body.OptionalString("reason") ?? (required ? throw MatrixException.MissingParam("reason") : "");
        return reason.Length > MaxReasonLength ? throw MatrixException.InvalidParam($"reason is longer than {MaxReasonLength} characters.") : reason;
    }

    private async Task<RoomSnapshot> RoomOrNotFoundAsync(string roomId, CancellationToken ct)
    {
        try
        {
            return await reader.RoomAsync(roomId, ct);
        }
        catch (MatrixException e) when (e.Status is 403 or 404)
        {
            throw MatrixException.NotFound("Room not found.");
        }
    }

    private async Task StoreAsync(Requester requester, string? roomId, string? eventId, string? userId, string reason, HttpContext context)
    {
        var reportId = Secrets.NewSessionId();
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(s => s.ExecuteAsync("""
            INSERT INTO reports (report_id, reporter, room_id, event_id, user_id, reason, received_ts)
            VALUES (@reportId, @reporter, @roomId, @eventId, @userId, @reason, @now)
            """, new { reportId, reporter = requester.UserId.Value, roomId, eventId, userId, reason, now }), context.RequestAborted);
        logger.LogWarning("Report {ReportId} from {Reporter}: room {RoomId}, event {EventId}, user {UserId}",
            reportId, requester.UserId.Value, roomId, eventId, userId);
        await context.WriteJsonAsync(new JsonObject());
    }
}
