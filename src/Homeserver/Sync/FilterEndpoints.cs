using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>Spec: filters (<c>POST/GET /user/{userId}/filter</c>).</summary>
public sealed class FilterEndpoints(Authenticator authenticator, JsonBody json, Database db) : IEndpoints
{
    public const int MaxFilterBytes = 16 * 1024;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "user/{userId}/filter", CreateAsync);
        app.MapV3("GET", "user/{userId}/filter/{filterId}", GetAsync);
    }

    private async Task CreateAsync(HttpContext context)
    {
        var requester = await RequireOwnerAsync(context);
        var body = await json.ReadObjectAsync(context);
        var text = body.GetRawText();
        if (text.Length > MaxFilterBytes)
            throw MatrixException.TooLarge("Filter is too large.");
        SyncFilter.Parse(body);
        var user = requester.UserId.Value;
        var id = await db.WriteAsync(async s =>
        {
            var next = await s.ExecuteScalarAsync<long?>("SELECT MAX(filter_id) FROM user_filters WHERE user_id = @user", new { user }) ?? -1;
            await s.ExecuteAsync("INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (@user, @id, @text)", new { user, id = next + 1, text });
            return next + 1;
        }, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["filter_id"] = id.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    private async Task GetAsync(HttpContext context)
    {
        var requester = await RequireOwnerAsync(context);
        var text = await LoadAsync(db, requester.UserId.Value, context.Route("filterId"), context.RequestAborted)
            ?? throw MatrixException.NotFound("Filter not found.");
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(text, context.RequestAborted);
    }

    public static async Task<string?> LoadAsync(Database db, string userId, string filterId, CancellationToken ct) =>
        long.TryParse(filterId, out var id)
            ? await db.ReadAsync(s => s.QuerySingleOrDefaultAsync<string>(
                "SELECT filter_json FROM user_filters WHERE user_id = @userId AND filter_id = @id", new { userId, id }), ct)
            : null;

    private async Task<Requester> RequireOwnerAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only use your own filters.");
        return requester;
    }
}
