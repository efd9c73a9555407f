DROP TABLE IF EXISTS crawler.log, crawler.job, crawler.source;
