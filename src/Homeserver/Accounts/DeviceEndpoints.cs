using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec: Device management (<c>/devices</c>, <c>/delete_devices</c>). Application services may also create devices
/// for their users (PUT, 201) and delete them without user-interactive auth (v1.17).
/// </summary>
public sealed class DeviceEndpoints(
    AccountService accounts, Authenticator authenticator, UserInteractiveAuth uia, Database db, DeviceStore devices, JsonBody json) : IEndpoints
{
    private const int MaxDisplayNameLength = 100;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "devices", ListAsync);
        app.MapV3("GET", "devices/{deviceId}", GetAsync);
        app.MapV3("PUT", "devices/{deviceId}", UpdateAsync);
        app.MapV3("DELETE", "devices/{deviceId}", DeleteAsync);
        app.MapV3("POST", "delete_devices", DeleteManyAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var rows = await db.ReadAsync(s => devices.ListAsync(s, requester.UserId.Value), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["devices"] = new JsonArray(rows.Select(ToJson).ToArray<JsonNode?>()) });
    }

    private async Task GetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var deviceId = context.Route("deviceId");
        var row = await db.ReadAsync(s => devices.GetAsync(s, requester.UserId.Value, deviceId), context.RequestAborted)
            ?? throw MatrixException.NotFound("Device not found.");
        await context.WriteJsonAsync(ToJson(row));
    }

    private async Task UpdateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var deviceId = context.Route("deviceId");
        var body = await json.ReadObjectAsync(context);
        var displayName = body.OptionalString("display_name");
        if (displayName is { Length: > MaxDisplayNameLength })
            throw MatrixException.InvalidParam($"display_name may not be longer than {MaxDisplayNameLength} characters.");
        if (requester.AppService is not null)
        {
            var created = await accounts.CreateOrRenameDeviceForAppServiceAsync(requester.UserId.Value, deviceId, displayName, context.RequestAborted);
            await context.WriteJsonAsync(new JsonObject(), created ? 201 : 200);
            return;
        }
        if (!await accounts.RenameDeviceAsync(requester.UserId.Value, deviceId, displayName, context.RequestAborted))
            throw MatrixException.NotFound("Device not found.");
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await DeleteWithAuthAsync(context, requester, await json.ReadObjectAsync(context, optional: true), [context.Route("deviceId")]);
    }

    private async Task DeleteManyAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        await DeleteWithAuthAsync(context, requester, body, body.RequiredStringArray("devices"));
    }

    private async Task DeleteWithAuthAsync(HttpContext context, Requester requester, System.Text.Json.JsonElement body, IReadOnlyList<string> deviceIds)
    {
        if (requester.AppService is not null)
            await accounts.DeleteDevicesAsync(requester.UserId.Value, deviceIds, alsoInTransaction: null, context.RequestAborted);
        else
        {
            var authorisation = await uia.ReauthenticateAsync(context, body, requester);
            await accounts.DeleteDevicesAsync(requester.UserId.Value, deviceIds, s => uia.FinishAsync(s, authorisation), context.RequestAborted);
        }
        await context.WriteJsonAsync(new JsonObject());
    }

    private static JsonObject ToJson(DeviceRow row) => new()
    {
        ["device_id"] = row.DeviceId,
        ["display_name"] = row.DisplayName,
        ["last_seen_ip"] = row.LastSeenIp,
        ["last_seen_ts"] = row.LastSeenTs,
    };
}
