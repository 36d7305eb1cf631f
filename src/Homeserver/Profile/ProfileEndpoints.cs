using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Profile;

/// <summary>Spec: Profiles (<c>/profile/{userId}</c> and <c>/profile/{userId}/{keyName}</c>).</summary>
public sealed class ProfileEndpoints(ProfileService profiles, Authenticator authenticator, JsonBody json, HomeserverConfig config) : IEndpoints
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
        var userId = LocalUser(context);
        var body = new JsonObject();
        foreach (var field in await profiles.GetProfileAsync(userId, context.RequestAborted))
            body[field.Field] = JsonNode.Parse(field.ValueJson);
        await context.WriteJsonAsync(body);
    }

    private async Task GetFieldAsync(HttpContext context)
    {
        var userId = LocalUser(context);
        var key = context.Route("keyName");
        var value = await profiles.GetFieldAsync(userId, key, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { [key] = JsonNode.Parse(value) });
    }

    private async Task SetFieldAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
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
        await profiles.DeleteFieldAsync(requester, LocalUser(context), context.Route("keyName"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    // Remote profiles come over federation, which lands with the federation work; until then they are not found.
    private UserId LocalUser(HttpContext context)
    {
        if (!UserId.TryParse(context.Route("userId"), out var userId))
            throw MatrixException.InvalidParam("Invalid user ID.");
        if (userId.Server.Value != config.ServerName)
            throw MatrixException.NotFound("Profile was not found.");
        return userId;
    }
}
