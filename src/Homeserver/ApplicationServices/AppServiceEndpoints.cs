using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>Spec: the client API's application-service extensions, <c>POST /v1/appservice/{appserviceId}/ping</c>.</summary>
public sealed class AppServiceEndpoints(Authenticator authenticator, JsonBody json, AppServiceClient client) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapV1("POST", "appservice/{appserviceId}/ping", PingAsync);

    private async Task PingAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (requester.AppService is not { } service || service.Id != context.Route("appserviceId"))
            throw MatrixException.Forbidden("Only the application service itself can ping it.");
        var body = await json.ReadObjectAsync(context, optional: true);
        var duration = await client.PingAsync(service, body.OptionalString("transaction_id"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["duration_ms"] = duration });
    }
}
