using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>Spec: Server administration (v1.18), <c>/v1/admin/suspend/{userId}</c> and <c>/v1/admin/lock/{userId}</c>, for admins.</summary>
public sealed class AccountModerationEndpoints(
    Authenticator authenticator, JsonBody json, Database db, UserStore users, HomeserverConfig config, ILogger<AccountModerationEndpoints> logger)
    : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV1("GET", "admin/suspend/{userId}", context => GetAsync(context, "suspended", u => u.Suspended != 0));
        app.MapV1("PUT", "admin/suspend/{userId}", context => SetAsync(context, "suspended", users.SetSuspendedAsync));
        app.MapV1("GET", "admin/lock/{userId}", context => GetAsync(context, "locked", u => u.Locked != 0));
        app.MapV1("PUT", "admin/lock/{userId}", context => SetAsync(context, "locked", users.SetLockedAsync));
    }

    private async Task GetAsync(HttpContext context, string field, Func<UserRow, bool> state)
    {
        var user = await TargetAsync(context);
        await context.WriteJsonAsync(new JsonObject { [field] = state(user) });
    }

    private async Task SetAsync(HttpContext context, string field, Func<DbSession, string, bool, Task> set)
    {
        var user = await TargetAsync(context);
        var body = await json.ReadObjectAsync(context);
        var value = body.TryGetProperty(field, out var element)
            ? element.ValueKind is JsonValueKind.True or JsonValueKind.False ? element.GetBoolean() : throw MatrixException.BadJson($"'{field}' must be a boolean.")
            : throw MatrixException.MissingParam(field);
        await db.WriteAsync(s => set(s, user.UserId, value), context.RequestAborted);
        logger.LogWarning("{Admin} set {UserId} {Field}={Value}", (await authenticator.AuthenticateAsync(context)).UserId.Value, user.UserId, field, value);
        await context.WriteJsonAsync(new JsonObject { [field] = value });
    }

    private async Task<UserRow> TargetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (!requester.IsAdmin)
            throw MatrixException.Forbidden("Only server administrators may do this.");
        if (!UserId.TryParse(context.Route("userId"), out var userId) || userId.Server.Value != config.ServerName)
            throw MatrixException.InvalidParam("The user ID does not belong to this server.");
        var user = await db.ReadAsync(s => users.GetAsync(s, userId.Value), context.RequestAborted);
        return user is null || user.Deactivated != 0 ? throw MatrixException.NotFound("No such active user.") : user;
    }
}
