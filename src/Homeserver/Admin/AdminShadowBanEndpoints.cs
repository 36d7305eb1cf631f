using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's <c>POST</c> and <c>DELETE /_synapse/admin/v1/users/{userId}/shadow_ban</c>: a shadow-banned user's
/// messages, state changes, redactions, invites (also those of a new room) and typing seem to succeed and reach nobody;
/// joining, leaving and reading work as before, so the user cannot tell.
/// </summary>
public sealed class AdminShadowBanEndpoints(AdminAuth auth, UserStore users, Database db, ILogger<AdminShadowBanEndpoints> logger) : IEndpoints
{
    private const string Path = AdminAuth.Prefix + "/v1/users/{userId}/shadow_ban";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPost(Path, context => SetAsync(context, true));
        app.MapDelete(Path, context => SetAsync(context, false));
    }

    private async Task SetAsync(HttpContext context, bool banned)
    {
        var admin = await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        await db.WriteAsync(s => users.SetShadowBannedAsync(s, user.UserId, banned), context.RequestAborted);
        logger.LogWarning("{Admin} {Action} {UserId}", admin.UserId.Value, banned ? "shadow-banned" : "lifted the shadow ban of", user.UserId);
        await context.WriteJsonAsync(new JsonObject());
    }
}
