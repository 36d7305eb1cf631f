using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>An HTTP listener on a free loopback port that hands each request to a handler, for servers the tests play.</summary>
public sealed class LoopbackListener : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;

    public int Port { get; } = FreePorts.Next();
    public string Address { get; }
    public string BaseUrl => $"http://{Address}:{Port}";

    /// <param name="address">a loopback address other than 127.0.0.1 lets a test tell this listener from other loopback services</param>
    public LoopbackListener(Func<HttpListenerContext, Task> handle, string address = "127.0.0.1")
    {
        Address = address;
        _listener.Prefixes.Add($"http://{address}:{Port}/");
        _listener.Start();
        _serving = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                _ = Task.Run(() => handle(context));
            }
        });
    }

    public static async Task RespondAsync(HttpListenerContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(body.ToJsonString()));
        context.Response.Close();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        // Close alone: after Stop, Close looks the port up again and binds it anew, failing when another process
        // has taken it meanwhile.
        _listener.Close();
        try { await _serving; } catch (Exception) { /* listener shut down */ }
    }
}
