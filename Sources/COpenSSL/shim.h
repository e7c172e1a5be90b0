#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/bn.h>
