using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's user admin API: list, describe, create or modify, deactivate, reset the password, the admin flag,
/// suspension, joined rooms and username availability (<c>/_synapse/admin/v1</c>, <c>/v2</c>).
/// </summary>
public sealed class AdminUserEndpoints(
    AdminAuth auth, AdminUserService service, AccountDeactivation deactivation, AdminUserStore adminUsers, AccountService accounts, RoomStore rooms, Database db,
    JsonBody json, ApplicationServices.AppServiceRegistry appServices) : IEndpoints
{
    private const string V1 = AdminAuth.Prefix + "/v1";
    private const string V2 = AdminAuth.Prefix + "/v2";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(V2 + "/users", context => ListAsync(context, v3: false));
        app.MapGet(AdminAuth.Prefix + "/v3/users", context => ListAsync(context, v3: true));
        app.MapGet(V2 + "/users/{userId}", GetAsync);
        app.MapPut(V2 + "/users/{userId}", PutAsync);
        app.MapPost(V1 + "/deactivate/{userId}", DeactivateAsync);
        app.MapPost(V1 + "/reset_password/{userId}", ResetPasswordAsync);
        app.MapGet(V1 + "/users/{userId}/admin", GetAdminAsync);
        app.MapPut(V1 + "/users/{userId}/admin", PutAdminAsync);
        app.MapPut(V1 + "/suspend/{userId}", SuspendAsync);
        app.MapGet(V1 + "/users/{userId}/joined_rooms", JoinedRoomsAsync);
        app.MapGet(V1 + "/username_available", UsernameAvailableAsync);
    }

    /// <summary>v2 and v3 differ only in <c>deactivated</c>: v2's true adds deactivated users, v3's filters on it (none: all).</summary>
    private async Task ListAsync(HttpContext context, bool v3)
    {
        await auth.RequireAdminAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var filter = new AdminUserFilter(
            UserIdContains: context.Query("user_id"),
            NameContains: context.Query("name"),
            Guests: AdminQuery.Boolean(context, "guests") ?? true,
            Deactivated: v3 ? AdminQuery.Boolean(context, "deactivated") : AdminQuery.Boolean(context, "deactivated") == true ? null : false,
            Admins: AdminQuery.Boolean(context, "admins"),
            Locked: AdminQuery.Boolean(context, "locked") ?? false,
            NotUserTypes: context.Request.Query["not_user_type"].Select(t => JsonFields.WithoutNul(t ?? "", "not_user_type")).ToList(),
            OrderBy: AdminQuery.OneOf(context, "order_by", "name", AdminUserStore.SortColumns.Keys.ToList()),
            Backwards: AdminQuery.Backwards(context));
        var (rows, total) = await db.ReadAsync(s => adminUsers.ListAsync(s, filter, from, limit), context.RequestAborted);
        var body = new JsonObject
        {
            ["users"] = new JsonArray(rows.Select(row => (JsonNode)AdminUserService.ListEntry(row)).ToArray()),
            ["total"] = total,
        };
        if ((long)from + limit < total)
            body["next_token"] = (from + rows.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await context.WriteJsonAsync(body);
    }

    private async Task GetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = auth.LocalUserId(context);
        await context.WriteJsonAsync(await service.DescribeAsync(userId.Value, context.RequestAborted) ?? throw MatrixException.NotFound("User not found."));
    }

    private async Task PutAsync(HttpContext context)
    {
        AdminUserChanges? changes = null;
        var requester = await auth.RequireAdminOrReactivatingAppServiceAsync(context, async () => changes = ParseChanges(await json.ReadObjectAsync(context)));
        var userId = auth.LocalUserId(context);
        changes ??= ParseChanges(await json.ReadObjectAsync(context));
        var created = await service.CreateOrModifyAsync(requester, userId, changes, context.RequestAborted);
        await context.WriteJsonAsync((await service.DescribeAsync(userId.Value, context.RequestAborted))!, created ? 201 : 200);
    }

    private static AdminUserChanges ParseChanges(JsonElement body) => new(
        Password: body.OptionalString("password"),
        LogoutDevices: body.OptionalBool("logout_devices") ?? true,
        Displayname: Present(body, "displayname") ? new Set<string>(body.OptionalString("displayname") ?? "") : null,
        AvatarUrl: Present(body, "avatar_url") ? new Set<string>(body.OptionalString("avatar_url") ?? "") : null,
        Threepids: Pairs(body, "threepids", "medium", "address"),
        ExternalIds: Pairs(body, "external_ids", "auth_provider", "external_id"),
        Admin: body.OptionalBool("admin"),
        Deactivated: body.OptionalBool("deactivated"),
        Locked: body.OptionalBool("locked"),
        UserType: Present(body, "user_type") ? new Set<string?>(body.OptionalString("user_type")) : null);

    private static bool Present(JsonElement body, string name) => body.TryGetProperty(name, out _);

    /// <summary>An optional array of objects with two required string fields each (threepids, external IDs).</summary>
    private static List<(string, string)>? Pairs(JsonElement body, string name, string first, string second)
    {
        if (!body.TryGetProperty(name, out var array) || array.ValueKind == JsonValueKind.Null)
            return null;
        if (array.ValueKind != JsonValueKind.Array || array.EnumerateArray().Any(item => item.ValueKind != JsonValueKind.Object))
            throw MatrixException.BadJson($"'{name}' must be an array of objects.");
        return array.EnumerateArray().Select(item => (item.RequiredString(first), item.RequiredString(second))).ToList();
    }

    private async Task DeactivateAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var erase = (await json.ReadObjectAsync(context, optional: true)).OptionalBool("erase") ?? false;
        var unbound = await deactivation.DeactivateAsync(userId, erase, idServer: null, alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = unbound });
    }

    private async Task ResetPasswordAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var body = await json.ReadObjectAsync(context);
        var newPassword = body.RequiredString("new_password");
        var logoutDevices = body.OptionalBool("logout_devices") ?? true;
        await accounts.ChangePasswordAsync(userId, keptDeviceId: null, newPassword, logoutDevices, alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task GetAdminAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var user = await auth.ExistingLocalUserAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["admin"] = user.IsAdmin != 0 });
    }

    private async Task PutAdminAsync(HttpContext context)
    {
        var requester = await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var body = await json.ReadObjectAsync(context);
        var admin = body.OptionalBool("admin") ?? throw MatrixException.MissingParam("admin");
        await service.SetAdminAsync(requester, userId, admin, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task SuspendAsync(HttpContext context)
    {
        var requester = await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var suspend = (await json.ReadObjectAsync(context)).OptionalBool("suspend") ?? throw MatrixException.MissingParam("suspend");
        await service.SetSuspendedAsync(requester, userId, suspend, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { [$"user_{userId}_suspended"] = suspend });
    }

    private async Task JoinedRoomsAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var userId = auth.LocalUserId(context);
        var joined = (await db.ReadAsync(s => rooms.MembershipsAsync(s, userId.Value), context.RequestAborted))
            .Where(m => m.Membership == "join").Select(m => m.RoomId).Order(StringComparer.Ordinal).ToList();
        await context.WriteJsonAsync(new JsonObject
        {
            ["joined_rooms"] = new JsonArray(joined.Select(id => (JsonNode)id).ToArray()),
            ["total"] = joined.Count,
        });
    }

    /// <summary>As <c>/register/available</c>, but also while registration is closed.</summary>
    private async Task UsernameAvailableAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var username = context.Query("username");
        if (username.Length == 0)
            throw MatrixException.MissingParam("username");
        var userId = accounts.ValidateNewLocalpart(username);
        appServices.CheckUserIdFree(userId.Value, actor: null);
        if (await accounts.IsUserIdTakenAsync(userId, context.RequestAborted))
            throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");
        await context.WriteJsonAsync(new JsonObject { ["available"] = true });
    }
}
