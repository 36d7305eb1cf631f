using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec: Adding account administrative contact information (3PIDs), answered for a server that has no email or phone
/// support: no identifiers are ever attached, validation tokens are refused with <c>M_THREEPID_DENIED</c>, and
/// removing one is a no-op (as Synapse answers without email configured).
/// </summary>
public sealed class ThirdPartyIdEndpoints(Authenticator authenticator, JsonBody json) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "account/3pid", ListAsync);
        app.MapV3("POST", "account/3pid", RefuseAuthenticatedAsync);
        app.MapV3("POST", "account/3pid/add", RefuseAuthenticatedAsync);
        app.MapV3("POST", "account/3pid/bind", RefuseAuthenticatedAsync);
        app.MapV3("POST", "account/3pid/delete", RemoveAsync);
        app.MapV3("POST", "account/3pid/unbind", RemoveAsync);
        foreach (var path in new[] { "account/3pid", "register", "account/password" })
            foreach (var medium in new[] { "email", "msisdn" })
                app.MapV3("POST", $"{path}/{medium}/requestToken", RefuseTokenAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["threepids"] = new JsonArray() });
    }

    private async Task RefuseAuthenticatedAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        await json.ReadObjectAsync(context, optional: true);
        throw Denied();
    }

    private async Task RemoveAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        _ = body.OptionalString("medium") ?? throw MatrixException.MissingParam("medium");
        _ = body.OptionalString("address") ?? throw MatrixException.MissingParam("address");
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = "no-support" });
    }

    private async Task RefuseTokenAsync(HttpContext context)
    {
        await json.ReadObjectAsync(context);
        throw Denied();
    }

    private static MatrixException Denied() =>
        new(403, "M_THREEPID_DENIED", "This server does not support email addresses or phone numbers on accounts.");
}
