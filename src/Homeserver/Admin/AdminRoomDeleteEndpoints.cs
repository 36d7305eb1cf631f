using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's room deletion API: v1 (deletes while the request waits), v2 (answers a delete ID at once and works in
/// the background, with status by ID and by room), and blocking a room.
/// </summary>
public sealed class AdminRoomDeleteEndpoints(
    AdminAuth auth, RoomShutdown shutdown, AdminTasks tasks, BlockedRoomStore blocked, RoomStore rooms, UserStore users, Database db, JsonBody json,
    HomeserverConfig config, IHostApplicationLifetime lifetime, ILogger<AdminRoomDeleteEndpoints> logger) : IEndpoints
{
    private const string Kind = "delete_room";
    private const string DefaultRoomName = "Content Violation Notification";
    private const string DefaultMessage = "Sharing illegal content on this server is not permitted and rooms in violation will be blocked.";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapDelete(AdminAuth.Prefix + "/v1/rooms/{roomId}", DeleteNowAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/rooms/{roomId}/delete", DeleteNowAsync);
        app.MapDelete(AdminAuth.Prefix + "/v2/rooms/{roomId}", DeleteInBackgroundAsync);
        app.MapGet(AdminAuth.Prefix + "/v2/rooms/{roomId}/delete_status", StatusOfRoomAsync);
        app.MapGet(AdminAuth.Prefix + "/v2/rooms/delete_status/{deleteId}", StatusAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/rooms/{roomId}/block", BlockStatusAsync);
        app.MapPut(AdminAuth.Prefix + "/v1/rooms/{roomId}/block", BlockAsync);
    }

    private async Task DeleteNowAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var request = await ReadRequestAsync(context);
        var result = await shutdown.ShutDownAsync(roomId, admin.UserId.Value, request, context.RequestAborted);
        if (request.Purge)
            await shutdown.PurgeAsync(roomId, request.ForcePurge, context.RequestAborted);
        await context.WriteJsonAsync(result.ToJson());
    }

    private async Task DeleteInBackgroundAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var request = await ReadRequestAsync(context);
        if (!request.Block && await db.ReadAsync(s => rooms.GetRoomAsync(s, roomId), context.RequestAborted) is null)
            throw MatrixException.NotFound($"Unknown room id {roomId}.");
        var deletion = tasks.TryStart(Kind, roomId, "shutting_down") ?? throw new MatrixException(400, "M_UNKNOWN", $"History purge already in progress for {roomId}");
        var stopping = lifetime.ApplicationStopping;
        tasks.Run(deletion, async task =>
        {
            task.Result = await shutdown.ShutDownAsync(roomId, admin.UserId.Value, request, stopping);
            if (request.Purge)
            {
                task.Status = "purging";
                await shutdown.PurgeAsync(roomId, request.ForcePurge, stopping);
            }
        }, logger);
        await context.WriteJsonAsync(new JsonObject { ["delete_id"] = deletion.Id });
    }

    private async Task StatusOfRoomAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var found = tasks.OfRoom(Kind, roomId);
        if (found.Count == 0)
            throw MatrixException.NotFound($"No delete task for room_id '{roomId}' found");
        await context.WriteJsonAsync(new JsonObject { ["results"] = new JsonArray(found.Select(d => (JsonNode)StatusJson(d, withId: true)).ToArray()) });
    }

    private async Task StatusAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var deletion = tasks.Find(Kind, context.Route("deleteId")) ?? throw MatrixException.NotFound($"delete id '{context.Route("deleteId")}' not found");
        await context.WriteJsonAsync(StatusJson(deletion, withId: false));
    }

    private async Task BlockStatusAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var blockedBy = await db.ReadAsync(s => blocked.BlockedByAsync(s, roomId), context.RequestAborted);
        await context.WriteJsonAsync(blockedBy is null ? new JsonObject { ["block"] = false } : new JsonObject { ["block"] = true, ["user_id"] = blockedBy });
    }

    private async Task BlockAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var block = (await json.ReadObjectAsync(context)).OptionalBool("block") ?? throw MatrixException.MissingParam("block");
        await db.WriteAsync(s => block ? blocked.BlockAsync(s, roomId, admin.UserId.Value) : blocked.UnblockAsync(s, roomId), context.RequestAborted);
        logger.LogWarning("{Admin} {Action} {RoomId}", admin.UserId.Value, block ? "blocked" : "unblocked", roomId);
        await context.WriteJsonAsync(new JsonObject { ["block"] = block });
    }

    private static JsonObject StatusJson(AdminTask deletion, bool withId)
    {
        var body = new JsonObject();
        if (withId)
            body["delete_id"] = deletion.Id;
        body["status"] = deletion.Status;
        if (deletion.Error is { } error)
            body["error"] = error;
        body["shutdown_room"] = (deletion.Result as RoomShutdownResult ?? new RoomShutdownResult([], [], [], null)).ToJson();
        return body;
    }

    private async Task<RoomShutdownRequest> ReadRequestAsync(HttpContext context)
    {
        var body = await json.ReadObjectAsync(context, optional: true);
        string? newRoomUserId = null;
        if (body.OptionalString("new_room_user_id") is { } creator)
        {
            if (!UserId.TryParse(creator, out var parsed) || parsed.Server.Value != config.ServerName)
                throw MatrixException.InvalidParam("User must be our own.");
            if (await db.ReadAsync(s => users.GetAsync(s, creator), context.RequestAborted) is null)
                throw MatrixException.NotFound($"User {creator} not found.");
            newRoomUserId = creator;
        }
        return new RoomShutdownRequest(
            newRoomUserId,
            body.OptionalString("room_name") ?? DefaultRoomName,
            body.OptionalString("message") ?? DefaultMessage,
            Block: body.OptionalBool("block") ?? false,
            Purge: body.OptionalBool("purge") ?? true,
            ForcePurge: body.OptionalBool("force_purge") ?? false);
    }
}
