using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Matrix.Bridges.Erp;

/// <summary>The webhook listener, on its own address (ERP systems reach it; the homeserver-facing API stays apart).</summary>
public static class WebhookServer
{
    public static async Task<WebApplication> StartAsync(ErpBridge bridge, ErpBridgeConfig.WebhookSection config, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://{config.BindAddress}:{config.Port}");
        var app = builder.Build();
        bridge.MapWebhooks(app);
        await app.StartAsync(ct);
        return app;
    }
}
