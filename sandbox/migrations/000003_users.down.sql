DROP TABLE IF EXISTS users.session, users.account;
