namespace RnnSimd.Peers; internal static class Summary { public static int Run(string dir, TextWriter o) => 0; }
