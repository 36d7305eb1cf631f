using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Profile;

/// <summary>Spec: Profiles (<c>/profile/{userId}</c> and <c>/profile/{userId}/{keyName}</c>).</summary>
public sealed class ProfileEndpoints(
    ProfileService profiles, Authenticator authenticator, JsonBody json, HomeserverConfig config, Matrix.Federation.Transport.FederationClient federation)
    : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "profile/{userId}", GetProfileAsync);
        app.MapV3("GET", "profile/{userId}/{keyName}", GetFieldAsync);
        app.MapV3("PUT", "profile/{userId}/{keyName}", SetFieldAsync);
        app.MapV3("DELETE", "profile/{userId}/{keyName}", DeleteFieldAsync);
    }

    private async Task GetProfileAsync(HttpContext context)
    {
        if (RemoteUser(context) is { } remote)
        {
            await context.WriteJsonAsync(await RemoteProfileAsync(remote, null, context.RequestAborted));
            return;
        }
        var userId = LocalUser(context);
        var body = new JsonObject();
        foreach (var field in await profiles.GetProfileAsync(userId, context.RequestAborted))
            body[field.Field] = JsonNode.Parse(field.ValueJson);
        await context.WriteJsonAsync(body);
    }

    private async Task GetFieldAsync(HttpContext context)
    {
        var key = context.Route("keyName");
        if (RemoteUser(context) is { } remote)
        {
            var remoteProfile = await RemoteProfileAsync(remote, key, context.RequestAborted);
            await context.WriteJsonAsync(remoteProfile[key] is { } remoteValue
                ? new JsonObject { [key] = remoteValue.DeepClone() }
                : throw MatrixException.NotFound("Profile field was not found."));
            return;
        }
        var userId = LocalUser(context);
        var value = await profiles.GetFieldAsync(userId, key, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { [key] = JsonNode.Parse(value) });
    }

    private async Task SetFieldAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var userId = LocalUser(context);
        var key = context.Route("keyName");
        var body = await json.ReadObjectAsync(context);
        if (!body.TryGetProperty(key, out var value))
            throw MatrixException.MissingParam(key);
        await profiles.SetFieldAsync(requester, userId, key, value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteFieldAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        await profiles.DeleteFieldAsync(requester, LocalUser(context), context.Route("keyName"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private UserId LocalUser(HttpContext context)
    {
        if (!UserId.TryParse(context.Route("userId"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        if (userId.Server.Value != config.ServerName)
            throw MatrixException.Forbidden("Profiles of other servers' users cannot be changed here.");
        return userId;
    }

    private UserId? RemoteUser(HttpContext context) =>
        UserId.TryParse(context.Route("userId"), out var userId) && userId.Server.Value != config.ServerName ? userId : null;

    /// <summary>A remote user's profile through <c>query/profile</c> on their server.</summary>
    private async Task<JsonObject> RemoteProfileAsync(UserId userId, string? field, CancellationToken ct)
    {
        if (!config.Federation.Enabled)
            throw MatrixException.NotFound("Profile was not found.");
        var query = $"/_matrix/federation/v1/query/profile?user_id={Uri.EscapeDataString(userId.Value)}"
            + (field is "displayname" or "avatar_url" ? $"&field={field}" : "");
        try
        {
            return await federation.SendAsync(HttpMethod.Get, userId.Server.Value, query, null, ct) as JsonObject ?? [];
        }
        catch (Matrix.Federation.Transport.FederationException e) when (e.Status is 404 or 400)
        {
            throw MatrixException.NotFound("Profile was not found.");
        }
        catch (Matrix.Federation.Transport.FederationException e)
        {
            throw new MatrixException(502, "M_UNKNOWN", $"Could not fetch the profile: {e.Message}");
        }
    }
}
