using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>Synapse's device admin API (<c>/_synapse/admin/v2/users/{userId}/devices</c>): any local user's devices, without user-interactive auth.</summary>
public sealed class AdminDeviceEndpoints(AdminAuth auth, AccountService accounts, DeviceStore devices, Database db, JsonBody json) : IEndpoints
{
    private const string Devices = AdminAuth.Prefix + "/v2/users/{userId}/devices";
    private const int MaxDisplayNameLength = 100;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Devices, ListAsync);
        app.MapPost(Devices, CreateAsync);
        app.MapPost(AdminAuth.Prefix + "/v2/users/{userId}/delete_devices", DeleteManyAsync);
        app.MapGet(Devices + "/{deviceId}", GetAsync);
        app.MapPut(Devices + "/{deviceId}", UpdateAsync);
        app.MapDelete(Devices + "/{deviceId}", DeleteAsync);
    }

    /// <summary>An admin asks about an existing local user; its ID.</summary>
    private async Task<string> TargetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        return (await auth.ExistingLocalUserAsync(context)).UserId;
    }

    private async Task ListAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var rows = (await db.ReadAsync(s => devices.ListAsync(s, userId), context.RequestAborted)).ToList();
        await context.WriteJsonAsync(new JsonObject
        {
            ["devices"] = new JsonArray(rows.Select(row => (JsonNode)ToJson(row)).ToArray()),
            ["total"] = rows.Count,
        });
    }

    private async Task CreateAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var deviceId = (await json.ReadObjectAsync(context)).RequiredString("device_id");
        await accounts.CreateOrRenameDeviceForAppServiceAsync(userId, deviceId, displayName: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject(), 201);
    }

    private async Task GetAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var deviceId = context.Route("deviceId");
        var row = await db.ReadAsync(s => devices.GetAsync(s, userId, deviceId), context.RequestAborted)
            ?? throw MatrixException.NotFound("No device found.");
        await context.WriteJsonAsync(ToJson(row));
    }

    private async Task UpdateAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var displayName = (await json.ReadObjectAsync(context)).OptionalString("display_name");
        if (displayName is { Length: > MaxDisplayNameLength })
            throw MatrixException.InvalidParam($"display_name may not be longer than {MaxDisplayNameLength} characters.");
        if (!await accounts.RenameDeviceAsync(userId, context.Route("deviceId"), displayName, context.RequestAborted))
            throw MatrixException.NotFound("No device found.");
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        await accounts.DeleteDevicesAsync(userId, [context.Route("deviceId")], alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteManyAsync(HttpContext context)
    {
        var userId = await TargetAsync(context);
        var deviceIds = (await json.ReadObjectAsync(context)).RequiredStringArray("devices");
        await accounts.DeleteDevicesAsync(userId, deviceIds, alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static JsonObject ToJson(DeviceRow row) => new()
    {
        ["device_id"] = row.DeviceId,
        ["display_name"] = row.DisplayName,
        ["last_seen_ip"] = row.LastSeenIp,
        ["last_seen_user_agent"] = row.LastSeenUserAgent,
        ["last_seen_ts"] = row.LastSeenTs,
        ["user_id"] = row.UserId,
        ["dehydrated"] = false,
    };
}
