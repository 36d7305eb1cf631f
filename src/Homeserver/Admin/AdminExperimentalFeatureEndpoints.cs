using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's per-user experimental features (<c>/_synapse/admin/v1/experimental_features/{userId}</c>). This server
/// has none to switch per user: the list is empty and switching an unknown feature is refused, as Synapse refuses one.
/// </summary>
public sealed class AdminExperimentalFeatureEndpoints(AdminAuth auth, JsonBody json) : IEndpoints
{
    private const string Path = AdminAuth.Prefix + "/v1/experimental_features/{userId}";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Path, GetAsync);
        app.MapPut(Path, PutAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        await auth.ExistingLocalUserAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["features"] = new JsonObject() });
    }

    private async Task PutAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        await auth.ExistingLocalUserAsync(context);
        var body = await json.ReadObjectAsync(context);
        if (!body.TryGetProperty("features", out var features) || features.ValueKind != JsonValueKind.Object)
            throw MatrixException.MissingParam("features");
        foreach (var feature in features.EnumerateObject())
            throw MatrixException.InvalidParam($"{feature.Name} is not recognised as a valid experimental feature.");
        await context.WriteJsonAsync(new JsonObject());
    }
}
