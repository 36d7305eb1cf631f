using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.E2ee;

/// <summary>Spec: send-to-device messaging, <c>PUT /sendToDevice/{eventType}/{txnId}</c>.</summary>
public sealed class ToDeviceEndpoints(Authenticator authenticator, JsonBody json, ToDeviceService toDevice) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapV3("PUT", "sendToDevice/{eventType}/{txnId}", SendAsync);

    private async Task SendAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        await toDevice.SendAsync(requester, context.Route("eventType"), context.Route("txnId"), body, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }
}
