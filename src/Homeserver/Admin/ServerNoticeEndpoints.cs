using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>POST /_synapse/admin/v1/send_server_notice</c> and its idempotent <c>PUT .../{txnId}</c>: an event
/// (a message unless <c>type</c> says otherwise) from the system user to a local user's notice room.
/// </summary>
public sealed class ServerNoticeEndpoints(AdminAuth auth, ServerNotices notices, UserStore users, Database db, JsonBody json, HomeserverConfig config)
    : IEndpoints
{
    private const string Path = AdminAuth.Prefix + "/v1/send_server_notice";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost(Path, context => SendAsync(context, txnId: null));
        app.MapPut(Path + "/{txnId}", context => SendAsync(context, context.Route("txnId")));
    }

    private async Task SendAsync(HttpContext context, string? txnId)
    {
        var admin = await auth.RequireAdminAsync(context);
        var body = await json.ReadObjectAsync(context);
        var userId = body.RequiredString("user_id");
        var content = body.OptionalObject("content") is { } given ? RoomCreation.ToCanonicalObject(given) : throw MatrixException.MissingParam("content");
        if (!UserId.TryParse(userId, out var parsed) || parsed.Server.Value != config.ServerName)
            throw MatrixException.InvalidParam("Server notices can only be sent to local users.");
        if (await db.ReadAsync(s => users.GetAsync(s, userId), context.RequestAborted) is null)
            throw MatrixException.NotFound("User not found.");
        var notice = new NewEvent(body.OptionalString("type") ?? "m.room.message", body.OptionalString("state_key"), Sender: "", content)
        {
            // A retry of the same admin's request answers with the event sent the first time.
            Transaction = txnId is null ? null : ($"admin {admin.UserId.Value}", txnId),
        };
        var sent = await notices.SendAsync(admin, userId, notice, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["event_id"] = sent.Pdu.EventId });
    }
}
