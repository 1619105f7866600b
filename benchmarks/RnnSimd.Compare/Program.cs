return RnnSimd.Compare.Comparer.Run(args, Console.Out, Console.Error);
