using System.Diagnostics;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

// Media benchmark: upload initiation (request sent -> the server asks for the body, i.e. its first accepted byte, via
// Expect: 100-continue), whole-file upload and download rates, and thumbnail generation (first request, which makes and
// stores the thumbnail) against serving a stored one.
// Usage: dotnet run -c Release --project bench/Media [-- --size-mb 100 --runs 5 --image 4000x3000 --engine sqlite|postgres]
//        [--url http://other-server:8008 --token <access token>]   (any homeserver; without --url ours is started)
//        (--smoke: a 4 MB file, 2 runs, an 800x600 image, as the test suite runs it so the benchmark cannot rot)
var sizeMb = 100;
var runs = 5;
var (imageWidth, imageHeight) = (4000, 3000);
var engine = "sqlite";
string? url = null, token = null;
for (var i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--size-mb": sizeMb = int.Parse(args[++i]); break;
        case "--runs": runs = int.Parse(args[++i]); break;
        case "--image":
            var parts = args[++i].Split('x');
            (imageWidth, imageHeight) = (int.Parse(parts[0]), int.Parse(parts[1]));
            break;
        case "--engine": engine = args[++i]; break;
        case "--url": url = args[++i].TrimEnd('/'); break;
        case "--token": token = args[++i]; break;
        case "--smoke": (sizeMb, runs, imageWidth, imageHeight) = (4, 2, 800, 600); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
TestDatabase? database = null;
HomeserverProcess? server = null;
if (url is null)
{
    database = await TestDatabase.CreateAsync(engine);
    server = new HomeserverProcess(database.Yaml, "media:\n  max_upload_bytes: 2147483648\n");
    await server.StartAsync();
    url = server.BaseUrl;
    token = (await new MatrixClient(server.BaseUrl, server.ServerName).RegisterAsync()).AccessToken;
    Console.WriteLine($"server: ours, database {engine}, at {url}");
}
else if (token is null)
    throw new ArgumentException("--url needs --token");
else
    Console.WriteLine($"server: {url}");

try
{
    using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

    var size = sizeMb * 1024L * 1024;
    var initiation = new List<double>();
    var uploadRates = new List<double>();
    var downloadRates = new List<double>();
    for (var run = 0; run < runs; run++)
    {
        var body = new TimedContent(size);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{url}/_matrix/media/v3/upload?filename=bench.bin") { Content = body };
        request.Headers.ExpectContinue = true;
        var clock = Stopwatch.StartNew();
        body.Clock = clock;
        using var response = await http.SendAsync(request);
        var total = clock.Elapsed.TotalSeconds;
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"upload failed: {answer.ToJsonString()}");
        initiation.Add(body.FirstByteAt.TotalMilliseconds);
        uploadRates.Add(sizeMb / total);

        var download = Stopwatch.StartNew();
        using var media = await http.GetAsync($"{url}/_matrix/client/v1/media/download/{answer["content_uri"]!.GetValue<string>()[6..]}",
            HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await media.Content.ReadAsStreamAsync();
        await stream.CopyToAsync(Stream.Null);
        downloadRates.Add(sizeMb / download.Elapsed.TotalSeconds);
    }

    var png = TestImages.Png(imageWidth, imageHeight);
    var sizes = new[] { (32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"), (800, 600, "scale") };
    var thumbnails = new List<(string Size, double FirstMs, double StoredMs)>();
    using (var upload = await http.PostAsync($"{url}/_matrix/media/v3/upload", new ByteArrayContent(png) { Headers = { ContentType = new("image/png") } }))
    {
        var mxc = JsonNode.Parse(await upload.Content.ReadAsStringAsync())!["content_uri"]!.GetValue<string>()[6..];
        foreach (var (w, h, method) in sizes)
        {
            var path = $"{url}/_matrix/client/v1/media/thumbnail/{mxc}?width={w}&height={h}&method={method}";
            var first = await TimeGetAsync(http, path);
            var stored = Enumerable.Range(0, 5).Select(_ => TimeGetAsync(http, path).Result).Min();
            thumbnails.Add(($"{w}x{h} {method}", first, stored));
        }
    }

    Console.WriteLine();
    Console.WriteLine($"{sizeMb} MB file, {runs} runs");
    Console.WriteLine($"{"measure",-44} {"median",10} {"best",10} {"worst",10}");
    Print("upload initiation, ms (to first accepted byte)", initiation, lowerIsBetter: true);
    Print("upload, MB/s", uploadRates, lowerIsBetter: false);
    Print("download, MB/s", downloadRates, lowerIsBetter: false);
    Console.WriteLine();
    Console.WriteLine($"thumbnails of a {imageWidth}x{imageHeight} PNG ({png.Length / 1024} KB)");
    Console.WriteLine($"{"size",-16} {"generate ms",12} {"stored ms",10}");
    foreach (var (label, firstMs, storedMs) in thumbnails)
        Console.WriteLine($"{label,-16} {firstMs,12:F1} {storedMs,10:F1}");
    Console.WriteLine();
    Console.WriteLine("json: " + JsonSerializer.Serialize(new
    {
        benchmark = "media", file_mb = sizeMb, runs,
        upload_initiation_ms_median = Median(initiation), upload_mb_s_median = Median(uploadRates), download_mb_s_median = Median(downloadRates),
        image = $"{imageWidth}x{imageHeight}",
        thumbnails = thumbnails.Select(t => new { size = t.Size, generate_ms = t.FirstMs, stored_ms = t.StoredMs }),
    }));
}
finally
{
    if (server is not null)
        await server.DisposeAsync();
    if (database is not null)
        await database.DisposeAsync();
}

static async Task<double> TimeGetAsync(HttpClient http, string path)
{
    var clock = Stopwatch.StartNew();
    using var response = await http.GetAsync(path);
    var bytes = await response.Content.ReadAsByteArrayAsync();
    if (!response.IsSuccessStatusCode)
        throw new InvalidOperationException($"{path}: {(int)response.StatusCode}");
    return clock.Elapsed.TotalMilliseconds;
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static void Print(string label, List<double> values, bool lowerIsBetter)
{
    var (best, worst) = lowerIsBetter ? (values.Min(), values.Max()) : (values.Max(), values.Min());
    Console.WriteLine($"{label,-44} {Median(values),10:F1} {best,10:F1} {worst,10:F1}");
}

/// <summary>An upload body of the given length, made on the fly, that notes when the server first accepted bytes of it.</summary>
sealed class TimedContent(long length) : HttpContent
{
    public Stopwatch Clock { get; set; } = new();
    public TimeSpan FirstByteAt { get; private set; }

    protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
    {
        var chunk = new byte[256 * 1024];
        Random.Shared.NextBytes(chunk);
        for (long sent = 0; sent < length; sent += chunk.Length)
        {
            await stream.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, length - sent)));
            if (sent == 0)
                FirstByteAt = Clock.Elapsed;
        }
    }

    protected override bool TryComputeLength(out long size)
    {
        size = length;
        return true;
    }
}
